"""`backupctl validate` and invalid configurations through the real CLI (issue #3)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Workspace
from tests.integration.cli.helpers import snapshot_count

THREE_MISTAKES = """\
job: emr-db
host:
  address: local
source:
  paths: [{src}]
  exlude: ["*.tmp"]
repository:
  url: {repo}
  password_file: /nonexistent/emr-db.pw
generations:
  last: 7
copies:
  - name: usb
    kind: offline
    url: /mnt/usb/emr-db
    password_file: {pw}
    max_age: 7days
schedule:
  backup: "*-*-* 02:00:00"
  verify: "Sun *-*-* 04:00:00"
"""


def _three_mistakes(ws: Workspace) -> Path:
    src = ws.root / "src" / "emr-db"
    src.mkdir(parents=True)
    (src / "f").write_text("data\n")
    path = ws.jobs_dir / "emr-db.yaml"
    ws.jobs_dir.mkdir(exist_ok=True)
    path.write_text(THREE_MISTAKES.format(src=src, repo=ws.new_repo("emr-db"),
                                          pw=ws.password_file()))
    return path


def test_validate_reports_three_mistakes_and_exits_2(workspace: Workspace) -> None:
    path = _three_mistakes(workspace)

    result = workspace.run("validate")

    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert lines == [  # sorted by line, in the docs' words
        f"{path}:6: source.exlude: unknown key; did you mean source.exclude?",
        f"{path}:9: repository.password_file: password file /nonexistent/emr-db.pw does not "
        "exist",
        f"{path}:17: copies[0].max_age: invalid duration '7days': use a positive number with "
        "s, m, h or d (e.g. 30s, 15m, 2h, 7d)",
    ], result.stderr
    assert result.stdout == ""


def test_backup_of_an_invalid_job_exits_2_and_runs_nothing(workspace: Workspace) -> None:
    """The only job file is broken: nothing runs (a broken file beside valid ones:
    test_broken_job_file.py)."""
    path = _three_mistakes(workspace)

    for args in (["backup", "emr-db"], ["backup", "--all"], ["backup", "--all", "--json"],
                 ["verify", "emr-db"], ["copy", "--all"], ["init", "emr-db"], ["status"]):
        if args == ["status"]:  # status reads the state; nothing before it opened it
            assert not workspace.state_dir.exists(), "state was opened for nothing to run"
        result = workspace.run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert f"{path}:6: source.exlude: unknown key" in result.stderr
        assert "\"jobs\": []" in result.stdout if "--json" in args else True

    assert snapshot_count(workspace.root / "repos" / "emr-db") == 0


def test_validate_ok_lists_the_jobs(workspace: Workspace) -> None:
    workspace.job("a")
    workspace.job("b")
    result = workspace.run("validate")
    assert result.returncode == 0, result.stderr
    assert "2 job(s): a, b" in result.stderr


def test_validate_strict_names_the_guideline_requirements(workspace: Workspace) -> None:
    workspace.job("weak", generations={"last": 1})
    path = workspace.jobs_dir / "weak.yaml"
    assert workspace.run("validate").returncode == 0

    result = workspace.run("validate", "--strict")

    assert result.returncode == 2
    assert f"{path}:" in result.stderr
    assert "copies: no offline or immutable copy" in result.stderr
    assert "generations: fewer than 2 generations kept" in result.stderr


def test_missing_config_file_exits_2(workspace: Workspace) -> None:
    workspace.config.unlink()
    result = workspace.run("status")
    assert result.returncode == 2
    assert "configuration file not found" in result.stderr


def test_unknown_job_name_exits_2_and_runs_nothing(workspace: Workspace) -> None:
    workspace.job("a")
    result = workspace.run("backup", "nope")
    assert result.returncode == 2
    assert "unknown job 'nope'" in result.stderr
    assert not workspace.state_dir.exists()


def test_yaml_syntax_error_through_the_cli(workspace: Workspace) -> None:
    workspace.jobs_dir.mkdir(exist_ok=True)
    path = workspace.jobs_dir / "broken.yaml"
    path.write_text("job: broken\nhost:\n  address: [local\nsource: {}\n")
    result = workspace.run("validate")
    assert result.returncode == 2
    assert f"{path}:" in result.stderr and "invalid YAML" in result.stderr


def test_prove_within_bad_value_is_exit_2_naming_file_line_and_key(
        workspace: Workspace) -> None:
    workspace.job("fresh", verify={"prove_within": "a month"})
    path = workspace.jobs_dir / "fresh.yaml"
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if text.strip().startswith("prove_within:"))

    result = workspace.run("validate")

    assert result.returncode == 2
    assert (f"{path}:{line}: verify.prove_within: invalid duration 'a month': use a positive "
            "number with s, m, h or d") in result.stderr


def test_validate_warns_when_the_schedules_cannot_meet_prove_within(
        workspace: Workspace) -> None:
    workspace.job("weekly", verify={"prove_within": "30d"})  # verify on Sundays: 4 in 30 days
    workspace.job("never", verify={"prove_within": "10d"},
                  schedule={"backup": "*-*-* 02:00:00", "verify": "*-01-01 04:00:00"})
    workspace.job("daily", verify={"prove_within": "30d"},
                  schedule={"backup": "*-*-* 02:00:00", "verify": "*-*-* 04:00:00"})
    weekly, never = workspace.jobs_dir / "weekly.yaml", workspace.jobs_dir / "never.yaml"

    result = workspace.run("validate")

    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warned) == 2, result.stderr
    assert warned[0].startswith(f"{never}:") and "schedule.verify: warning:" in warned[0]
    assert "does not run within verify.prove_within 10d" in warned[0]
    assert warned[1].startswith(f"{weekly}:") and "runs only 4 time(s)" in warned[1]
    assert "daily.yaml" not in result.stderr
