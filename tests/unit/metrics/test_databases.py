"""backupctl_database_* (SPEC §10): per database, from the newest restore tests."""

from __future__ import annotations

from typing import Any

from backupctl.metrics import registry
from tests.unit.metrics.conftest import Fleet, make_job


def _proof(name: str, mode: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "postgresql", "mode": mode, "result": "proven",
            "sha256_match": True, "tables_checked": 5, **extra}


def test_database_series_come_from_the_newest_tests_and_the_newest_full_restore(
        fleet: Fleet) -> None:
    job = make_job("db").model_copy(update={"databases": [
        _database("emr"), _database("lab"), _database("never")]})
    fleet.run("db", "verify", "success", at=4, mode="full", restore_ms=9000,
              databases=[_proof("emr", "full", restore_ms=7250),
                         _proof("lab", "full", restore_ms=1000)])
    fleet.run("db", "verify", "bad_data", at=5, mode="quick", databases=[
        _proof("emr", "quick", tables_checked=4, result="bad_data", mismatches=[
            {"table": "public.x", "expected": 3, "restored": None,
             "reason": "no data in the dump"}])])
    fleet.clock.at(30)

    reg = registry(fleet.source(jobs=[job]))[0]

    def value(metric: str, database: str) -> float | None:
        return reg.get_sample_value(f"backupctl_database_{metric}",
                                    {"backup_job": "db", "database": database})

    assert value("restore_duration_seconds", "emr") == 7.25  # the full one, not the quick
    assert value("tables_checked", "emr") == 4 and value("row_mismatches", "emr") == 1
    assert value("tables_checked", "lab") == 5 and value("row_mismatches", "lab") == 0
    assert value("restore_duration_seconds", "lab") == 1.0
    assert value("tables_checked", "never") is None  # never tested: no series at all


def _database(name: str) -> Any:
    from backupctl.config.schema import Database

    return Database(name=name, kind="postgresql", dsn=f"host=/run/postgresql dbname={name}")
