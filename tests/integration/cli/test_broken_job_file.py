"""One broken job file spoils only itself (issue 29, SPEC §15): a new pacs.yaml whose password
file does not exist yet no longer stops the night's backups of the other servers."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Sshd, Workspace
from tests.integration.cli.helpers import edit_job, runs, snapshot_count


def _broken_pacs(ws: Workspace, marker: Path) -> tuple[Path, int]:
    """pacs.yaml, valid but for its password file (not made yet); its before hook would
    leave `marker`. Returns the file and the line of repository.password_file."""
    ws.job("pacs")
    edit_job(ws, "pacs", source={"paths": [str(ws.root / "src" / "pacs")],
                                 "before": [f"touch {marker}"]},
             repository={"url": str(ws.root / "repos" / "pacs"),
                         "password_file": "/etc/backupctl/secrets/pacs"})
    path = ws.jobs_dir / "pacs.yaml"
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if "password_file:" in text)
    return path, line


def test_backup_all_backs_up_the_valid_job_lists_the_broken_file_and_exits_2(
        ssh_workspace: Workspace, sshd: Sshd) -> None:
    ws = ssh_workspace
    ws.job("emr-files", sshd=sshd)
    (ws.root / "src" / "emr-files" / "karte.txt").write_text("カルテ\n")
    marker = ws.root / "pacs-before-ran"
    pacs, line = _broken_pacs(ws, marker)

    result = ws.run("backup", "--all")

    assert result.returncode == 2, result.stderr
    assert snapshot_count(ws.root / "repos" / "emr-files") == 1
    assert "[OK] emr-files: snapshot" in result.stderr
    assert (f"{pacs}:{line}: repository.password_file: password file "
            "/etc/backupctl/secrets/pacs does not exist") in result.stderr
    assert not marker.exists(), "the broken job's before hook ran"
    assert [(r["job"], r["status"]) for r in runs(ws)] == [("emr-files", "success")]


def test_json_lists_the_invalid_job_files(workspace: Workspace) -> None:
    workspace.job("emr-files")
    pacs, line = _broken_pacs(workspace, workspace.root / "marker")

    result = workspace.run("backup", "--all", "--json")

    assert result.returncode == 2, result.stderr
    out = json.loads(result.stdout)
    assert out["exit_code"] == 2
    assert [(j["job"], j["status"]) for j in out["jobs"]] == [("emr-files", "ok")]
    assert out["invalid_job_files"] == [{
        "file": str(pacs), "job": "pacs",
        "problems": [{"line": line, "key": "repository.password_file",
                      "message": "password file /etc/backupctl/secrets/pacs does not exist"}]}]


def test_a_named_valid_job_runs_and_a_named_invalid_one_is_refused(
        workspace: Workspace) -> None:
    workspace.job("emr-files")
    marker = workspace.root / "pacs-before-ran"
    pacs, line = _broken_pacs(workspace, marker)

    alone = workspace.run("backup", "emr-files")
    both = workspace.run("backup", "pacs", "emr-files", "--json")

    assert alone.returncode == 2, alone.stderr  # ran, then exit 2 for the broken file
    assert "[OK] emr-files" in alone.stderr and f"{pacs}:{line}:" in alone.stderr
    assert both.returncode == 2, both.stderr
    jobs = {j["job"]: j for j in json.loads(both.stdout)["jobs"]}
    assert jobs["emr-files"]["status"] == "ok"
    assert (jobs["pacs"]["status"], jobs["pacs"]["kind"]) == ("usage", "invalid")
    assert snapshot_count(workspace.root / "repos" / "emr-files") == 2
    assert not marker.exists()
    assert {r["job"] for r in runs(workspace)} == {"emr-files"}


def test_verify_copy_and_due_run_the_valid_jobs(workspace: Workspace) -> None:
    workspace.job("emr-files", schedule={"backup": "*-*-* *:*:00", "verify": "*-*-* *:*:00"})
    (workspace.root / "src" / "emr-files" / "a").write_text("a\n")
    _broken_pacs(workspace, workspace.root / "marker")

    backup = workspace.run("backup", "--all", "--due")
    verify = workspace.run("verify", "--all")
    copy = workspace.run("copy", "--all")
    dry = workspace.run("backup", "--all", "--dry-run")

    for result in (backup, verify, copy, dry):
        assert result.returncode == 2, result.stderr
        assert "pacs.yaml" in result.stderr
    assert "[OK] emr-files" in backup.stderr
    assert "[OK] emr-files: quick verify" in verify.stderr
    assert "[OK] emr-files: no copies declared" in copy.stderr
    assert "emr-files:" in dry.stdout
    assert [r["kind"] for r in runs(workspace)] == ["backup", "verify"]


def test_status_shows_both_and_exits_2(workspace: Workspace) -> None:
    workspace.job("emr-files")
    pacs, line = _broken_pacs(workspace, workspace.root / "marker")
    assert workspace.run("backup", "emr-files").returncode == 2

    table = workspace.run("status")
    data = workspace.run("status", "--json")

    assert table.returncode == 2 and data.returncode == 2, table.stderr
    assert "emr-files" in table.stdout and "pacs" in table.stdout
    assert "INVALID JOB FILE" in table.stdout
    assert f"{pacs}:{line}: repository.password_file" in table.stderr
    out = json.loads(data.stdout)
    assert [j["job"] for j in out["jobs"]] == ["emr-files"]
    assert out["jobs"][0]["last_backup_status"] == "success"
    assert [f["job"] for f in out["invalid_job_files"]] == ["pacs"]


def test_validate_still_refuses_and_lists_every_error(workspace: Workspace) -> None:
    workspace.job("emr-files")
    pacs, _line = _broken_pacs(workspace, workspace.root / "marker")
    edit_job(workspace, "pacs", source={"paths": ["/srv/pacs"], "exlude": ["*.tmp"]})

    result = workspace.run("validate")

    assert result.returncode == 2
    found = [x for x in result.stderr.splitlines() if x.startswith(str(pacs))]
    assert len(found) == 2, result.stderr
    assert "unknown key; did you mean source.exclude?" in "\n".join(found)
    assert [int(x.split(":")[1]) for x in found] == sorted(int(x.split(":")[1]) for x in found)


def test_a_broken_global_configuration_still_stops_everything(workspace: Workspace) -> None:
    marker = workspace.root / "before-ran"
    workspace.job("good")
    edit_job(workspace, "good", source={"paths": [str(workspace.root / "src" / "good")],
                                        "before": [f"touch {marker}"]})
    workspace.write_config(concurrency=0)

    for args in (["backup", "good"], ["backup", "--all"], ["status"], ["init", "good"]):
        result = workspace.run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert f"{workspace.config}:" in result.stderr and "concurrency: must be at least 1" \
            in result.stderr
        assert result.stdout == ""
    assert not marker.exists()
    assert not workspace.state_dir.exists()


def test_single_job_commands_name_an_invalid_job_and_ignore_the_others(
        workspace: Workspace) -> None:
    workspace.job("emr-files")
    pacs, line = _broken_pacs(workspace, workspace.root / "marker")

    broken = workspace.run("init", "pacs", "--dry-run")
    other = workspace.run("init", "emr-files", "--dry-run")

    assert broken.returncode == 2 and f"{pacs}:{line}:" in broken.stderr
    assert other.returncode == 0, other.stderr
    assert "would create" in other.stdout
    assert "1 other job file(s) are invalid" in other.stderr


def test_bad_data_beside_a_broken_job_file_is_still_exit_3(workspace: Workspace) -> None:
    """A valid job's verify that finds bad data exits 3 (SPEC §4) even when another job
    file is invalid (which alone is exit 2): the damaged backup is the news that night."""
    from tests.repo_damage import flip_byte_in_largest_pack

    workspace.job("emr-files", verify={"sample": "all"})
    (workspace.root / "src" / "emr-files" / "a").write_bytes(b"x" * 100_000)
    assert workspace.run("backup", "emr-files").returncode == 0
    _broken_pacs(workspace, workspace.root / "marker")
    flip_byte_in_largest_pack(workspace.root / "repos" / "emr-files")

    verify = workspace.run("verify", "--all")

    assert verify.returncode == 3, verify.stderr
    assert "pacs.yaml" in verify.stderr and "BAD_DATA" in verify.stderr
