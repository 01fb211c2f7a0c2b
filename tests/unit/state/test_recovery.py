"""state.recovery: which snapshots `restore --snapshot proven` may bring back."""

from __future__ import annotations

from pathlib import Path

from backupctl.state.db import Store
from backupctl.state.records import VerifyDetails
from backupctl.state.recovery import RecoveryDetails, proven_snapshots
from tests.runs import record


def test_only_passed_full_verifies_of_the_repository_count_newest_snapshot_first(
        tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    full, quick = VerifyDetails(mode="full"), VerifyDetails(mode="quick")
    for snap, when, details, status, repository in (
            ("aaaa", "2026-01-01T00:00:00+00:00", full, "success", "primary"),
            ("cccc", "2026-03-01T00:00:00+00:00", full, "success", "primary"),
            ("bbbb", "2026-02-01T00:00:00+00:00", full, "success", "primary"),
            ("dddd", "2026-04-01T00:00:00+00:00", quick, "success", "primary"),
            ("eeee", "2026-05-01T00:00:00+00:00", full, "bad_data", "primary"),
            ("ffff", "2026-06-01T00:00:00+00:00", full, "success", "usb"),
            ("aaaa", "2026-01-01T00:00:00+00:00", full, "success", "primary")):
        record(store, job="emr", kind="verify", repository=repository, status=status,
               details=details, snapshot_id=snap, snapshot_time=when)
    record(store, job="other", kind="verify", status="success", details=full,
           snapshot_id="9999", snapshot_time="2026-07-01T00:00:00+00:00")

    assert store.query(proven_snapshots, "emr", repository="primary") == [
        "cccc", "bbbb", "aaaa"]
    assert store.query(proven_snapshots, "emr", repository="usb") == ["ffff"]
    assert store.query(proven_snapshots, "none", repository="primary") == []


def test_recovery_details_hold_no_float_and_judge_the_rto() -> None:
    details = RecoveryDetails(restore_ms=7200_000, rto_seconds=3600, target="local:/x")
    assert details.rto_exceeded is True
    assert not any(isinstance(v, float) for v in details.to_json().values())
