"""The drill's steps over frozen values: a failing step is recorded with what was done, the
restore's directory wiped; Ctrl-C records an aborted drill and goes on up."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from backupctl.actions import drill as drill_mod
from backupctl.actions.restore_test.snapshot import References
from backupctl.errors import CommandFailed
from backupctl.state.records import DrillDetails, read
from backupctl.state.schema import runs
from backupctl.status import ExitStatus
from backupctl.verify.listing import FileNode, Listing, SnapshotRef
from tests.unit.actions.conftest import make_context

SNAP = SnapshotRef(id="a" * 64, short_id="a" * 8, time="2026-12-01T02:00:00+00:00",
                   original=None)


class QuietUI:
    def __init__(self) -> None:
        self.roots: list[Path] = []

    def step(self, number: int, title: str) -> None:
        pass

    def info(self, text: str) -> None:
        pass

    def confirm_target(self, target: Path) -> bool:
        return True

    @contextlib.contextmanager
    def restoring(self, target: Path, total_bytes: int) -> Iterator[None]:
        self.roots.append(target)
        yield

    def manual(self, index: int, total: int, text: str) -> tuple[str, str]:
        return "pass", ""

    def remarks(self) -> str:
        return ""


@pytest.fixture(autouse=True)
def _engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drill_mod, "resolve", lambda *a, **k: SNAP)
    monkeypatch.setattr(drill_mod, "references", lambda *a, **k: References(
        manifest_id=SNAP.id, refs=(), changed=(), summary=None))
    listing = Listing(snapshot_id=SNAP.id, files=[FileNode("/srv/emr/a", 10, 0)])
    monkeypatch.setattr(drill_mod, "list_snapshot", lambda *a, **k: listing)


def _drill(tmp_path: Path, restore: Any, ui: QuietUI) -> tuple[Any, Any]:
    ctx, job = make_context(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(drill_mod, "restore", restore)
        result = drill_mod.drill(ctx, job, ui)
    with ctx.store.read() as conn:
        return result, list(conn.execute(select(runs)))


def test_a_failed_restore_is_recorded_with_the_steps_done_and_the_scratch_wiped(
        tmp_path: Path) -> None:
    def restore(*_a: Any, **_k: Any) -> Any:
        raise CommandFailed("emr: restic restore failed (disk full)")

    ui = QuietUI()
    result, [row] = _drill(tmp_path, restore, ui)
    assert result.status is ExitStatus.FAILED and row.status == "failed"
    details = read(DrillDetails, row.details)
    assert [(s.name, s.result) for s in details.steps] == [("snapshot", "pass"),
                                                             ("restore", "fail")]
    assert "disk full" in details.steps[1].detail
    [root] = ui.roots
    assert details.target == str(root) and details.wiped and not root.exists()


def test_ctrl_c_in_the_restore_records_an_aborted_drill_and_goes_on_up(
        tmp_path: Path) -> None:
    def restore(*_a: Any, **_k: Any) -> Any:
        raise KeyboardInterrupt

    ui = QuietUI()
    with pytest.raises(KeyboardInterrupt):
        _drill(tmp_path, restore, ui)
    ctx, _ = make_context(tmp_path)
    with ctx.store.read() as conn:
        [row] = list(conn.execute(select(runs)))
    details = read(DrillDetails, row.details)
    assert details.result == "aborted" and "drill aborted (KeyboardInterrupt)" in row.error
    assert [s.result for s in details.steps] == ["pass", "fail"]
    assert not ui.roots[0].exists()
