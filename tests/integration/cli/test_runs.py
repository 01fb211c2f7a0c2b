"""Runs through the real CLI: locks, killed runs, --all, --dry-run (issue #3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import BACKUPCTL, PASSWORD, Workspace
from tests.integration.cli.helpers import edit_job, runs, snapshot_count


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.05)




def _start(ws: Workspace, procs: list[subprocess.Popen[str]], *args: str,
           ) -> subprocess.Popen[str]:
    proc = subprocess.Popen([*BACKUPCTL, "-c", str(ws.config), *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    procs.append(proc)
    return proc


def test_second_run_of_the_same_job_exits_75_and_runs_nothing(
        workspace: Workspace, started: list[subprocess.Popen[str]]) -> None:
    workspace.job("emr")
    inside, release = workspace.root / "inside", workspace.root / "release"
    edit_job(workspace, "emr", source={"before": [
        f"touch {inside}; while [ ! -e {release} ]; do sleep 0.05; done"]})
    first = _start(workspace, started, "backup", "emr")
    _wait_for(inside)

    second = workspace.run("backup", "emr", "--json")

    release.touch()
    _, first_err = first.communicate(timeout=120)
    assert second.returncode == 75, second.stderr
    payload = json.loads(second.stdout)
    assert payload["exit_code"] == 75
    assert "already running" in payload["jobs"][0]["error"]
    assert first.returncode == 0, first_err
    assert len(runs(workspace)) == 1, "the second run left a state row"
    assert snapshot_count(workspace.root / "repos" / "emr") == 1


def test_kill_9_during_a_backup_is_recorded_as_interrupted(
        workspace: Workspace, started: list[subprocess.Popen[str]]) -> None:
    workspace.job("emr")
    inside = workspace.root / "inside"
    edit_job(workspace, "emr", source={"before": [f"touch {inside}; sleep 30"]})
    proc = _start(workspace, started, "backup", "emr")
    _wait_for(inside)
    assert [r["status"] for r in runs(workspace)] == ["running"]

    os.kill(proc.pid, signal.SIGKILL)  # backupctl only; its `sleep` child lives on
    proc.wait(timeout=30)
    status = workspace.run("status", "--json")

    assert status.returncode == 0, status.stderr
    [job] = json.loads(status.stdout)["jobs"]
    assert job["last_backup_status"] == "interrupted"
    assert "interrupted" in job["last_backup_error"]
    assert [r["status"] for r in runs(workspace)] == ["interrupted"]
    # The lock died with the process: the next run works at once.
    edit_job(workspace, "emr", source={"before": []})
    again = workspace.run("backup", "emr")
    assert again.returncode == 0, again.stderr
    assert [r["status"] for r in runs(workspace)] == ["interrupted", "success"]


def test_all_runs_jobs_in_parallel_one_failure_stops_nothing(workspace: Workspace) -> None:
    # good-a and good-b wait for each other: they only both succeed when run at the same time.
    for me, other in (("good-a", "good-b"), ("good-b", "good-a")):
        workspace.job(me)
        flag, peer = workspace.root / f"{me}.started", workspace.root / f"{other}.started"
        edit_job(workspace, me, source={"before": [
            f"touch {flag}; for i in $(seq 600); do [ -e {peer} ] && exit 0; sleep 0.05; done; "
            "exit 1"]})
    workspace.job("broken", repo=workspace.root / "repos" / "does-not-exist")

    result = workspace.run("backup", "--all", "--json")

    assert result.returncode == 1, result.stderr
    payload = json.loads(result.stdout)  # exactly one JSON object, nothing else on stdout
    assert isinstance(payload, dict)
    assert result.stdout.strip().startswith("{") and result.stdout.strip().endswith("}")
    jobs = {j["job"]: j for j in payload["jobs"]}
    assert (payload["exit_code"], payload["status"]) == (1, "failed")
    assert jobs["good-a"]["status"] == "ok" and jobs["good-b"]["status"] == "ok"
    assert jobs["broken"]["status"] == "failed"
    assert "does not exist" in jobs["broken"]["error"]
    assert "backupctl init broken" in jobs["broken"]["error"]
    assert not (workspace.root / "repos" / "does-not-exist").exists(), "created implicitly"
    assert snapshot_count(workspace.root / "repos" / "good-a") == 1


def test_concurrency_1_runs_jobs_one_at_a_time(workspace: Workspace) -> None:
    workspace.write_config(concurrency=1)
    for me, other in (("a", "b"), ("b", "a")):
        workspace.job(me)
        edit_job(workspace, me, source={"before": [
            f"[ ! -e {workspace.root / other}.running ] && "
            f"touch {workspace.root / me}.running && sleep 0.5 && rm {workspace.root / me}.running"
        ]})
    result = workspace.run("backup", "--all")
    assert result.returncode == 0, result.stderr


def test_repository_init_true_creates_a_missing_repository(workspace: Workspace) -> None:
    repo = workspace.root / "repos" / "fresh"
    workspace.job("fresh", repo=repo)
    edit_job(workspace, "fresh", repository={"init": True})
    result = workspace.run("backup", "fresh")
    assert result.returncode == 0, result.stderr
    assert snapshot_count(repo) == 1


def test_init_command_creates_the_repository_once(workspace: Workspace) -> None:
    repo = workspace.root / "repos" / "made"
    workspace.job("made", repo=repo)
    assert workspace.run("backup", "made").returncode == 1
    first = workspace.run("init", "made")
    assert first.returncode == 0, first.stderr
    assert "created" in first.stderr
    second = workspace.run("init", "made")
    assert second.returncode == 0 and "already exists" in second.stderr
    assert workspace.run("backup", "made").returncode == 0


def test_dry_run_prints_the_plan_masked_and_creates_nothing(workspace: Workspace) -> None:
    workspace.job("emr")
    marker = workspace.root / "before-ran"
    edit_job(workspace, "emr", source={"before": [f"touch {marker}"], "after": ["true"]})

    result = workspace.run("-v", "backup", "emr", "--dry-run")

    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "restic --repo" in text and " backup --json --host emr" in text
    assert "--password-file '<secret>'" in text
    assert "forget --json --host emr --group-by host,tags --keep-last 3 --prune" in text
    assert f"touch {marker}" in text
    assert PASSWORD not in text + result.stderr
    assert not marker.exists()
    assert not workspace.state_dir.exists()
    assert snapshot_count(workspace.root / "repos" / "emr") == 0


def test_dry_run_json(workspace: Workspace) -> None:
    workspace.job("emr")
    result = workspace.run("backup", "--all", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["dry_run"] is True and list(payload["plans"]) == ["emr"]
    assert not workspace.state_dir.exists()


def test_status_json_after_a_backup(workspace: Workspace) -> None:
    workspace.job("emr")
    (workspace.root / "src" / "emr" / "f").write_text("x")
    assert workspace.run("backup", "emr").returncode == 0
    result = workspace.run("status", "--json")
    assert result.returncode == 0, result.stderr
    [job] = json.loads(result.stdout)["jobs"]
    assert job["last_backup_status"] == "success"
    assert job["generations"] == 1
    assert job["last_snapshot_id"]
    assert job["age_seconds"] is not None and job["age_seconds"] < 600
    assert job["next_backup"] and job["next_backup"].endswith("+00:00")
    assert job["last_backup_error"] is None
