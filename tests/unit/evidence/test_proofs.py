"""The report's proof freshness (SPEC §12): per job, within the window or not, since when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from backupctl.evidence import proofs as report_proofs
from backupctl.evidence import render, report
from backupctl.evidence.period import Period
from backupctl.state import proofs
from backupctl.state.db import Store
from tests.unit.evidence.test_report import SCHEMA, _config

JST = timezone(timedelta(hours=9))
NOW = datetime(2026, 3, 1, tzinfo=UTC)
M = "2026-01-01T00:00:00.000000000+00:00"


def fresh(*, unproven: int, proof: str | None, waiting: str | None) -> proofs.Freshness:
    return proofs.Freshness(files=1000, unproven=unproven, oldest_proof=proof,
                            oldest_unproven=waiting, snapshot_id="s1")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_statement_says_met_since_when_and_what_still_waits(lang: str) -> None:
    done = report_proofs.statement(fresh(unproven=0, proof="2026-02-05T00:00:00+00:00",
                                         waiting=None),
                                   window=30 * 86400, lang=lang, now=NOW, tz=JST)
    assert done is not None and done["met"]
    assert "2026-02-05T09:00+09:00" in done["statement"] and "30d" in done["statement"]
    waits = report_proofs.statement(fresh(unproven=3, proof="2026-02-05T00:00:00+00:00",
                                          waiting="2026-02-28T00:00:00+00:00"),
                                    window=30 * 86400, lang=lang, now=NOW, tz=JST)
    assert waits is not None and waits["met"] and "3" in waits["statement"]
    late = report_proofs.statement(fresh(unproven=3, proof="2026-02-05T00:00:00+00:00",
                                         waiting="2026-01-02T00:00:00+00:00"),
                                   window=30 * 86400, lang=lang, now=NOW, tz=JST)
    assert late is not None and not late["met"]
    assert late["statement"].startswith("NO" if lang == "en" else "いいえ")
    assert report_proofs.statement(None, window=86400, lang=lang, now=NOW, tz=JST) is None


def test_report_states_proof_freshness_per_job_and_a_missed_window_is_a_finding(
        tmp_path: Path) -> None:
    config = _config(tmp_path, verify={"prove_within": "30d"})
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    with store.transaction() as conn:
        proofs.apply(conn, "emr-db", snapshot_id="s1", remove=[], add=[
            {"path": "/srv/a", "size": 1, "mtime": M, "sha256": "a" * 64,
             "seen_at": "2026-01-01T00:00:00+00:00", "proven_at": "2026-02-20T00:00:00+00:00"},
            {"path": "/srv/b", "size": 1, "mtime": M, "sha256": None,
             "seen_at": "2026-01-01T00:00:00+00:00", "proven_at": None}],
            files=2, changed=2, untracked=0, at="2026-01-01T00:00:00+00:00")
    period = Period.parse("2026-02-01", "2026-02-28", tz=JST)

    data = report.build(config=config, store=store, period=period, lang="en", now=NOW)

    (job,) = data["jobs"]
    assert job["proof"]["met"] is False and job["proof"]["unproven"] == 1
    assert job["proof"]["statement"] in job["findings"]
    jsonschema.validate(data, SCHEMA)
    assert job["proof"]["statement"] in render.html(data)
