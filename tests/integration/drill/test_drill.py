"""`backupctl drill` against real restic repositories, in a real terminal (tmux) and with --yes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import BACKUPCTL, PASSWORD, Workspace
from tests.repo_damage import flip_byte

from .conftest import STEPS, check_commands, drill_evidence, drill_job, rows, scratch_leftovers

NAME = "emr-db"


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}




def _json(ws: Workspace, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = ws.run(*args, "--json")
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)["jobs"][0], proc.stderr


def test_yes_drill_restores_verifies_and_records_timed_steps(workspace: Workspace) -> None:
    src = drill_job(workspace)

    code, result, stderr = _json(workspace, "drill", NAME, "--yes", "--operator", "test",
                                 "--remarks", "年次訓練")

    assert code == 0, (result, stderr)
    assert result["result"] == "pass" and result["status"] == "ok"
    assert result["files_checked"] == 12 and result["mismatches"] == []
    assert result["files_restored"] == 12 and result["restore_ms"] > 0
    names = [s["name"] for s in result["steps"]]
    assert names[:3] == ["snapshot", "restore", "verify hashes"]
    assert [n for n in names if n.startswith("check: ")] == [
        f"check: {c}" for c in check_commands(src)]
    assert names[-2:] == STEPS
    assert all(s["duration_ms"] >= 0 for s in result["steps"])
    assert [s["result"] for s in result["steps"][:-2]] == ["pass"] * 5
    assert [s["result"] for s in result["steps"][-2:]] == ["skipped", "skipped"]
    assert result["manual_steps_confirmed"] is False
    assert scratch_leftovers(workspace) == []
    assert result["target_kind"] == "scratch" and result["wiped"] is True

    [run] = rows(workspace, "SELECT * FROM runs WHERE kind = 'drill'")
    assert (run["status"], run["operator"], run["exit_code"]) == ("success", "test", 0)
    [record] = drill_evidence(workspace)
    assert record["operator"] == "test" and record["result"] == "pass"
    assert record["snapshot_id"] == result["snapshot_id"]
    details = record["details"]
    assert details["result"] == "pass" and details["remarks"] == "年次訓練"
    assert details["restore_ms"] == result["restore_ms"]
    assert [s["name"] for s in details["steps"]] == names
    assert all(isinstance(s["duration_ms"], int) for s in details["steps"])
    assert PASSWORD not in json.dumps(details) + stderr


def test_drill_of_a_corrupted_repository_is_a_recorded_failure_exit_3(
        workspace: Workspace) -> None:
    src = drill_job(workspace)
    packs = sorted((p for p in (workspace.root / "repos" / NAME / "data").rglob("*")
                    if p.is_file()), key=lambda p: p.stat().st_size, reverse=True)
    flip_byte(packs[0])  # the pack holding emr.dump (3 MiB of random data)

    code, result, stderr = _json(workspace, "drill", NAME, "--yes", "--operator", "test")

    assert code == 3, (result, stderr)
    assert result["result"] == "fail" and result["status"] == "bad_data"
    assert str(src / "emr.dump") in {m["path"] for m in result["mismatches"]}
    assert str(src / "emr.dump") in result["error"]
    assert scratch_leftovers(workspace) == []
    [run] = rows(workspace, "SELECT * FROM runs WHERE kind = 'drill'")
    assert run["status"] == "bad_data" and run["exit_code"] == 3
    [record] = drill_evidence(workspace)
    assert record["result"] == "fail" and record["details"]["result"] == "fail"
    assert record["details"]["steps"], "the steps done are recorded"


def test_drill_in_a_terminal_answers_each_manual_step(workspace: Workspace, tmux: Any) -> None:
    drill_job(workspace)
    term = tmux("drill", NAME, "--operator", "山田 花子")

    term.wait_for("Done? (y = done / n = failed / s = skip):")
    assert STEPS[0] in term.screen()
    term.answer("y")
    term.wait_for("Remark (Enter for none):")
    term.answer("起動を確認")
    term.wait_for("Done? (y = done / n = failed / s = skip):", count=2)
    assert STEPS[1] in term.screen()
    term.answer("maybe")  # not an answer: asked again
    term.wait_for("Done? (y = done / n = failed / s = skip):", count=3)
    term.answer("y")
    term.wait_for("Remark (Enter for none):", count=2)
    term.answer("")
    term.wait_for("Remarks for the record")
    term.answer("問題なし")

    assert term.exit_code() == 0, term.screen()
    assert "drill pass by 山田 花子" in term.screen()
    [record] = drill_evidence(workspace)
    details = record["details"]
    assert record["operator"] == "山田 花子" and record["result"] == "pass"
    manual = [s for s in details["steps"] if s["kind"] == "manual"]
    assert [(s["name"], s["result"], s["detail"]) for s in manual] == [
        (STEPS[0], "pass", "起動を確認"), (STEPS[1], "pass", "")]
    assert details["manual_steps_confirmed"] is True and details["remarks"] == "問題なし"
    assert scratch_leftovers(workspace) == []


def test_a_failed_manual_step_fails_the_drill_with_exit_3(workspace: Workspace) -> None:
    drill_job(workspace)
    # Answers on stdin: operator step 1 done, step 2 failed with a remark, no remarks.
    proc = workspace.run("drill", NAME, "--operator", "test", "--json",
                         input="y\n\nn\nカルテが表示されない\n\n")
    assert proc.returncode == 3, proc.stderr
    result = json.loads(proc.stdout)["jobs"][0]
    assert result["result"] == "fail"
    assert f"manual step '{STEPS[1]}' failed: カルテが表示されない" in result["error"]
    assert rows(workspace, "SELECT status FROM runs WHERE kind='drill'")[0][0] == "bad_data"


def test_ctrl_c_records_an_aborted_drill_and_wipes_scratch(workspace: Workspace,
                                                          tmux: Any) -> None:
    drill_job(workspace)
    term = tmux("drill", NAME, "--operator", "test")
    term.wait_for("Done? (y = done / n = failed / s = skip):")
    assert any(p.name.startswith(f"{NAME}.drill-") for p in scratch_leftovers(workspace))

    term.type("C-c")

    assert term.exit_code() == 1, term.screen()
    assert scratch_leftovers(workspace) == []
    [run] = rows(workspace, "SELECT * FROM runs WHERE kind = 'drill'")
    assert run["status"] == "failed" and "aborted" in run["error"]
    [record] = drill_evidence(workspace)
    assert record["result"] == "fail" and record["details"]["result"] == "aborted"
    assert [s["name"] for s in record["details"]["steps"]][:3] == [
        "snapshot", "restore", "verify hashes"]


def test_drill_into_a_real_target_keeps_the_data(workspace: Workspace, tmp_path: Path) -> None:
    src = drill_job(workspace)
    target = tmp_path / "本番 restore"

    code, result, stderr = _json(workspace, "drill", NAME, "--yes", "--operator", "test",
                                 "--target", str(target))

    assert code == 0, (result, stderr)
    assert result["target_kind"] == "real" and result["wiped"] is False
    assert _tree(target / src.relative_to("/")) == _tree(src)
    assert drill_evidence(workspace)[0]["details"]["target"] == str(target)


def test_a_non_empty_target_is_refused_and_nothing_runs(workspace: Workspace,
                                                       tmp_path: Path) -> None:
    drill_job(workspace)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "important").write_text("do not overwrite")

    proc = workspace.run("drill", NAME, "--yes", "--target", str(target))

    assert proc.returncode == 2, proc.stderr
    assert "not an empty directory" in proc.stderr
    assert rows(workspace, "SELECT * FROM runs WHERE kind = 'drill'") == []
    assert (target / "important").read_text() == "do not overwrite"


def test_a_refused_real_target_runs_nothing(workspace: Workspace, tmp_path: Path) -> None:
    drill_job(workspace)
    proc = workspace.run("drill", NAME, "--operator", "test", "--target",
                         str(tmp_path / "new"), input="n\n")
    assert proc.returncode == 1, proc.stderr
    assert "not confirmed" in proc.stderr
    assert rows(workspace, "SELECT * FROM runs WHERE kind = 'drill'") == []
    assert not (tmp_path / "new").exists()


def test_runbook_shows_the_last_drill(workspace: Workspace) -> None:
    drill_job(workspace)
    code, _result, _ = _json(workspace, "drill", NAME, "--yes", "--operator", "佐藤")
    assert code == 0
    text = workspace.run("runbook", NAME).stdout
    line = next(ln for ln in text.splitlines() if ln.startswith("- 最後の復旧訓練"))
    assert "合格" in line and "佐藤" in line and "秒" in line


def test_without_yes_and_without_a_terminal_nothing_runs(workspace: Workspace) -> None:
    workspace.job(NAME)
    proc = subprocess.run([*BACKUPCTL, "-c", str(workspace.config), "drill", NAME],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "--yes" in proc.stderr
    assert not (workspace.state_dir / "state.db").exists()  # nothing was even opened
