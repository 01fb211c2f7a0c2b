"""A state database made by an older backupctl is upgraded in place on SQLite and on a real
PostgreSQL: missing columns and indexes are added, rows and the evidence chain stay."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select

from backupctl.evidence import chain
from backupctl.state.db import Store
from backupctl.state.migrate import SCHEMA_KEY
from backupctl.state.schema import generations, meta
from backupctl.state.schema import runs as runs_table
from tests import runs


@pytest.fixture
def url(state_url: str) -> str:
    return state_url


def _age(url: str) -> None:
    """Turn a current database into one from before `generations.medium/snapshots`, the
    `runs_job_kind_repository` index and the schema fingerprint, holding real records."""
    store = Store(url)
    runs.record(store, job="emr", snapshot_id="0123abcd", evidence_details={})
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE generations DROP COLUMN medium")
        conn.exec_driver_sql("ALTER TABLE generations DROP COLUMN snapshots")
        conn.exec_driver_sql("DROP INDEX runs_job_kind_repository")
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN job_file_sha256")
        conn.exec_driver_sql("DROP TABLE leases")
        conn.execute(meta.delete())
        conn.exec_driver_sql("INSERT INTO generations (job, repository, count, expected, "
                             "observed_at) VALUES ('emr', 'primary', 3, 3, '2026-01-01')")


def test_an_older_database_gains_columns_and_indexes_and_keeps_its_rows(url: str) -> None:
    _age(url)

    store = Store(url)

    with store.read() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("generations")}
        indexes = {i["name"] for i in inspect(conn).get_indexes("runs")}
        run_columns = {c["name"] for c in inspect(conn).get_columns("runs")}
        has_leases = inspect(conn).has_table("leases")
        old_run = conn.execute(select(runs_table)).one()
        old = conn.execute(select(generations)).one()
        entries = list(chain.entries(conn))
        stored = conn.execute(select(meta.c.value).where(meta.c.key == SCHEMA_KEY)).scalar()
    assert {"medium", "snapshots"} <= columns
    assert "runs_job_kind_repository" in indexes
    assert "job_file_sha256" in run_columns and has_leases
    assert (old_run.snapshot_id, old_run.job_file_sha256) == ("0123abcd", None)
    assert (old.job, old._mapping["count"], old.medium, old.snapshots) == ("emr", 3, None, None)
    assert len(entries) == 1 and chain.check(entries).ok
    assert stored is not None
    # The upgraded database takes new rows with the new columns.
    with store.transaction() as conn:
        conn.execute(generations.insert().values(
            job="emr", repository="usb", count=2, expected=2, observed_at=store.now(),
            medium="USB-01", snapshots="[]"))


def test_the_upgrade_is_logged_once(url: str, caplog: pytest.LogCaptureFixture) -> None:
    _age(url)

    with caplog.at_level("WARNING", logger="backupctl.state.migrate"):
        Store(url)
        Store(url)

    upgrades = [r.getMessage() for r in caplog.records if "upgraded" in r.getMessage()]
    assert upgrades == ["state database upgraded: added column generations.medium, column "
                        "generations.snapshots, column runs.job_file_sha256, index "
                        "runs_job_kind_repository"], upgrades
