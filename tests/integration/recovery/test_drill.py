"""`backupctl drill JOB --to TARGET` (SPEC §11): the recovery rehearsed on a spare server
(a second real sshd), recorded as a drill with the recovery's proof and RTO."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Sshd, Workspace
from tests.integration.recovery.conftest import proven_job, rows, ssh_target, tree_of


def test_a_drill_onto_a_spare_server_restores_proves_and_records_it(
        workspace: Workspace, replacement: Sshd, tmp_path: Path) -> None:
    src = proven_job(workspace)
    spare = tmp_path / "spare"

    result = workspace.run("drill", "emr", "--to", ssh_target(replacement, spare),
                           "--identity", str(replacement.identity), "--yes", "--operator",
                           "訓練 太郎", "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    [job] = json.loads(result.stdout)["jobs"]
    assert (job["kind"], job["result"], job["target_kind"]) == ("drill", "pass", "replacement")
    assert job["target"] == ssh_target(replacement, spare)
    assert job["files_checked"] > 5 and job["mismatches"] == []
    assert job["restore_ms"] > 0 and job["wiped"] is False
    assert [s["name"] for s in job["steps"]][:3] == [
        "snapshot", f"restore onto {job['target']}", "proof on the target"]
    assert tree_of(spare / str(src).lstrip("/")) == tree_of(src)
    [record] = rows(workspace, "SELECT operator, details FROM evidence WHERE kind = 'drill'")
    assert record["operator"] == "訓練 太郎"
    assert json.loads(record["details"])["target_kind"] == "replacement"

    again = workspace.run("drill", "emr", "--to", ssh_target(replacement, spare),
                          "--identity", str(replacement.identity), "--yes")

    assert again.returncode == 2 and "is not empty" in again.stderr, again.stderr
    assert len(rows(workspace, "SELECT id FROM runs WHERE kind = 'drill'")) == 1
