"""Which finished runs become events: a recovery onto a replacement server is one of them."""

from __future__ import annotations

from pathlib import Path

from backupctl.notify.events import decide
from backupctl.notify.model import FinishedRun
from backupctl.state import queries
from backupctl.state.db import Store
from backupctl.state.records import Mismatch
from backupctl.state.recovery import RecoveryDetails
from tests import runs
from tests.unit.metrics.conftest import T0, FakeClock
from tests.unit.web.conftest import settings

PATH = "/srv/files/患者/山田太郎.pdf"


def _recovery(store: Store, status: str, **details: object) -> FinishedRun:
    run_id = runs.record(store, job="fileserver", kind="recovery", operator="yamada",
                         status=status, details=RecoveryDetails.model_validate(details),
                         error=f"mismatch {PATH}" if status != "success" else None)
    return FinishedRun.of(store.query(queries.run, run_id))


def test_a_failed_recovery_notifies_with_a_safe_line_and_a_later_success_recovers(
        tmp_path: Path) -> None:
    config, store = settings(tmp_path), Store(f"sqlite:///{tmp_path / 's.db'}",
                                              clock=FakeClock())
    bad = _recovery(store, "bad_data", result="fail", target="ssh://root@new:22/srv",
                    mismatches=[Mismatch(path=PATH, reason="hash")] * 2)
    event = decide(config, store, bad, now=T0, lang="ja")
    assert event is not None and event.name == "failure" and event.kind == "recovery"
    assert "2 件のファイルが元データと一致しませんでした" in event.reason
    assert PATH not in event.reason
    good = _recovery(store, "success", result="pass", target="ssh://root@new:22/srv")
    event = decide(config, store, good, now=T0, lang="en")
    assert event is not None and event.name == "recovery"
    assert event.reason == "the recovery onto a replacement server succeeded"


def test_a_first_successful_recovery_is_no_event(tmp_path: Path) -> None:
    config, store = settings(tmp_path), Store(f"sqlite:///{tmp_path / 's.db'}",
                                              clock=FakeClock())
    good = _recovery(store, "success", result="pass")
    assert decide(config, store, good, now=T0) is None
