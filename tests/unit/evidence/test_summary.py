"""The management summary reads the RTO verdict each record made, never today's RTO."""

from __future__ import annotations

import json
from typing import Any

from backupctl.evidence import charts, summary


def _record(kind: str, result: str, **details: Any) -> dict[str, Any]:
    return {"job": "emr-db", "kind": kind, "result": result,
            "finished_at": "2026-11-01T04:00:00+00:00", "details": json.dumps(details)}


def test_a_restore_judged_within_its_rto_stays_within_when_the_rto_shrinks_later() -> None:
    """Recorded 90 min against a 2 h objective; the job's RTO is 1 h today."""
    records = [_record("verify", "pass", restore_ms=5_400_000, rto_seconds=7200,
                       rto_exceeded=False)]
    facts = summary._facts({"job": "emr-db", "rto_seconds": 3600}, records)
    assert facts["rto_exceeded"] is False
    [point] = summary._restore_points(records, "emr-db")
    assert point[1:] == [5400.0, True]


def test_a_restore_without_an_objective_is_never_judged_by_todays_rto() -> None:
    records = [_record("verify", "pass", restore_ms=5_400_000)]  # no rto_seconds then
    assert summary._facts({"job": "emr-db", "rto_seconds": 60}, records)["rto_exceeded"] is False


def test_an_exceeded_rto_recorded_by_an_older_version_is_read_from_its_numbers() -> None:
    """Records made before `rto_exceeded` existed carry only the measured time and the
    objective they were tested against: the same rule judges them, from their own numbers."""
    records = [_record("verify", "fail", restore_ms=7_300_000, rto_seconds=7200)]
    assert summary._facts({"job": "emr-db", "rto_seconds": None}, records)["rto_exceeded"]
    [point] = summary._restore_points(records, "emr-db")
    assert point[2] is False


def test_the_chart_colours_a_dot_by_the_records_verdict() -> None:
    chart = {"rto_seconds": 60, "restores": [["2026-11-01T04:00:00+00:00", 300.0, True]]}
    drawn = charts.restore_time(chart, start="2026-11-01", end="2026-11-30")
    assert [d["ok"] for d in drawn["dots"]] == [True]  # over today's 60 s line, yet passed
