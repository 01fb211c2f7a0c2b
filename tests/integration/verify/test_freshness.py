"""Proof freshness with real restic (SPEC §12): ten simulated days of `prove_within: 10d`
prove every file; a changed file is unproven after the next backup."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from backupctl.actions import backup as backup_action
from backupctl.actions import verify as verify_action
from backupctl.actions.context import Context
from backupctl.config.validate import load_config
from backupctl.state.db import Store
from backupctl.status import ExitStatus
from tests.conftest import Workspace

FILES = 40


def _metric(ws: Workspace, name: str, job: str) -> float:
    proc = ws.run("metrics")
    assert proc.returncode == 0, proc.stderr
    found = re.search(rf'^{name}{{backup_job="{job}"}} (\S+)$', proc.stdout, flags=re.M)
    assert found is not None, proc.stdout
    return float(found.group(1))


def test_ten_days_prove_every_file_and_a_change_is_unproven_again(
        workspace: Workspace) -> None:
    src = workspace.root / "src" / "fresh"
    src.mkdir(parents=True)
    for i in range(FILES):
        (src / f"f{i:02d}.txt").write_text(f"file {i}\n" * (i + 1))
    workspace.job("fresh", source=src, verify={"sample": 1, "prove_within": "10d"},
                  schedule={"backup": "*-*-* 02:00:00", "verify": "*-*-* 04:00:00"})
    workspace.state_dir.mkdir(mode=0o700, exist_ok=True)
    config = load_config(workspace.config)
    job = config.job("fresh")
    # ten days that end now: `status` and `metrics` (the CLI, on the real clock) see them
    now = [datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)]

    def clock() -> datetime:
        return now[0]

    ctx = Context(config=config, store=Store(config.settings.effective_database_url,
                                             clock=clock), clock=clock)
    groups, checked = [], []
    for _day in range(10):
        made = backup_action.backup(ctx, job)
        assert made.status is ExitStatus.OK, made.error
        now[0] += timedelta(hours=2)
        tested = verify_action.verify(ctx, job)
        assert tested.status is ExitStatus.OK, tested.error
        checked.append(tested.details.files_checked)
        assert "prove_within: 4 file(s) of the newest snapshot restored and matched their " \
            "source hash, recorded as proven" in tested.details.steps
        groups += re.findall(r"--read-data-subset=(\d+/\d+)", " ".join(tested.details.steps))
        now[0] += timedelta(hours=22)

    # each day its share (40 files / 10 daily runs), and every pack group once
    assert checked == [4] * 10
    assert sorted(groups, key=lambda g: int(g.split("/")[0])) == \
        [f"{n}/10" for n in range(1, 11)]
    assert _metric(workspace, "backupctl_files_unproven", "fresh") == 0
    assert _metric(workspace, "backupctl_proof_files", "fresh") == FILES
    assert _metric(workspace, "backupctl_proof_oldest_seconds", "fresh") < 10 * 86400
    status = workspace.run("status")
    assert "fresh: proven within 10d: yes, 40 file(s), oldest proof" in status.stderr, \
        status.stderr

    (src / "f07.txt").write_text("changed on day eleven\n")
    assert backup_action.backup(ctx, job).status is ExitStatus.OK
    assert _metric(workspace, "backupctl_files_unproven", "fresh") == 1
    assert _metric(workspace, "backupctl_proof_oldest_seconds", "fresh") == float("inf")
    assert "1 of 40 file(s) unproven" in workspace.run("status").stderr
    now[0] += timedelta(hours=2)
    assert verify_action.verify(ctx, job).status is ExitStatus.OK
    assert _metric(workspace, "backupctl_files_unproven", "fresh") == 0
