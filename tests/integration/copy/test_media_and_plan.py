"""Medium labels, pruning of offline copies, and --dry-run."""

from __future__ import annotations

import json

from tests.conftest import PASSWORD, Workspace

from .helpers import (
    copy_entry,
    copy_of,
    job_status,
    repo_at,
    run_json,
    snapshot_times,
    touch_source,
)


def test_offline_copy_is_pruned_to_the_policy_and_its_medium_tracked(
        workspace: Workspace) -> None:
    ws = workspace
    usb = repo_at(ws, ws.root / "usb" / "restic" / "rot")
    ws.job("rot", generations={"last": 2}, copies=[copy_entry("usb", "offline", usb, ws)])
    first = ws.run("media", "init", "rot", "usb", "--json")
    assert first.returncode == 0, first.stderr
    label = json.loads(first.stdout)["label"]
    on_disk = json.loads((ws.root / "usb" / "restic" / ".backupctl-medium.json").read_text())
    assert on_disk["label"] == label
    again = json.loads(ws.run("media", "init", "rot", "usb", "--json").stdout)
    assert again["label"] == label and again["created"] is False

    for i in range(3):
        touch_source(ws, "rot", f"d{i}")
        assert ws.run("backup", "rot").returncode == 0
        code, result, stderr = run_json(ws, "copy", "rot")
        assert code == 0, stderr

    assert len(snapshot_times(usb)) == 2
    assert snapshot_times(usb) == snapshot_times(ws.root / "repos" / "rot")
    assert copy_of(result, "usb")["pruned"].startswith("forget --prune")
    status = job_status(ws, "rot")
    (copy,) = status["copies"]
    assert copy["medium"]["label"] == label
    assert [m["label"] for m in copy["media"]] == [label]
    assert all(r["finding"] is None for r in status["repositories"])


def test_dry_run_prints_the_plan_masked_and_runs_nothing(workspace: Workspace) -> None:
    ws = workspace
    usb = repo_at(ws, ws.root / "usb" / "plan")
    url = f"rest:http://backup:{PASSWORD}@127.0.0.1:9/plan/"
    ws.job("plan", copies=[copy_entry("usb", "offline", usb, ws),
                           copy_entry("worm", "immutable", url, ws)])

    proc = ws.run("copy", "plan", "--dry-run", "--json")

    assert proc.returncode == 0, proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    steps = json.loads(proc.stdout)["plans"]["plan"]
    # the URL holds a password: restic reads it from a file descriptor, the plan shows it masked
    assert any("restic --repository-file '<rest:http://backup:***@127.0.0.1:9/plan/>'" in s
               for s in steps)
    assert any("immutability probe" in s for s in steps)
    assert any("forget" in s and str(usb) in s for s in steps)
    assert snapshot_times(usb) == []
    assert not (ws.state_dir / "state.db").exists()


def test_job_without_copies_is_a_no_op(workspace: Workspace) -> None:
    workspace.job("solo")
    code, result, _ = run_json(workspace, "copy", "solo")
    assert code == 0 and result["jobs"][0]["copies"] == []
