"""Every command, given bad input, exits 2 with one line and no traceback; nothing runs.

The real CLI in processes of its own (tests/cli_fork.py; its one error door is `cli.main`),
run a few at a time.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import cli_fork
from tests.conftest import Workspace

NOWHERE = "/nonexistent-dir/out"

# (command line after `-c CONFIG`) for a job that does not exist
UNKNOWN_JOB = [
    ["init", "nosuchjob"], ["trust", "nosuchjob"], ["backup", "nosuchjob"],
    ["verify", "nosuchjob"], ["copy", "nosuchjob"], ["drill", "nosuchjob", "--yes"],
    ["runbook", "nosuchjob"], ["canary", "init", "nosuchjob"],
    ["media", "init", "nosuchjob", "usb"],
    ["clear", "nosuchjob", "--operator", "山田", "--reason", "test"],
]
BAD_DATE = [
    ["report", "--from", "2026-13-01", "--to", "2026-12-31"],
    ["report", "--from", "2026-12-31", "--to", "2026-01-01"],
    ["evidence", "export", "--from", "yesterday", "--to", "2026-12-31", "-o", "x.zip",
     "--password-file", "{pw}"],
]
MISSING_FILE = [
    ["evidence", "verify", "/nonexistent.zip", "--password-file", "{pw}"],
    ["evidence", "verify", "--db", "--anchor", "/nonexistent.anchors"],
    ["evidence", "export", "--from", "2026-01-01", "--to", "2026-12-31", "-o", "b.zip",
     "--password-file", "/nonexistent.pw"],
    ["report", "--from", "2026-01-01", "--to", "2026-12-31", "-o", f"{NOWHERE}/r.html"],
    ["metrics", "--textfile", f"{NOWHERE}/backupctl.prom"],
    ["runbook", "ok", "-o", f"{NOWHERE}/runbook.md"],
    ["evidence", "export", "--from", "2026-01-01", "--to", "2026-12-31", "-o",
     f"{NOWHERE}/b.zip", "--password-file", "{pw}"],
]
# every command that reads the configuration
EVERY = [
    ["validate"], ["status"], ["init", "ok"], ["trust", "ok"], ["backup", "ok"],
    ["backup", "--all"], ["verify", "ok"], ["copy", "--all"], ["drill", "ok", "--yes"],
    ["runbook", "ok"], ["canary", "init", "ok"], ["media", "init", "ok", "usb"],
    ["clear", "ok", "--operator", "x", "--reason", "y"], ["metrics"],
    ["exporter", "--listen", "127.0.0.1:1"],
    ["report", "--from", "2026-01-01", "--to", "2026-12-31"],
    ["evidence", "verify", "--db"], ["evidence", "head"],
    ["evidence", "export", "--from", "2026-01-01", "--to", "2026-12-31", "-o", "b.zip",
     "--password-file", "{pw}"],
    ["schedule", "show"], ["schedule", "cron"], ["schedule", "install", "--dry-run"],
    ["notify", "test"], ["notify", "check"], ["notify", "digest"],
]
# notification commands of a configuration without channels, or with bad values
NOTIFY = [["notify", "test"], ["notify", "test", "nochannel"], ["notify", "digest"],
          ["notify", "digest", "--days", "0"]]


def _run_all(config: Path, commands: list[list[str]],
             pw: Path) -> list[tuple[list[str], subprocess.CompletedProcess[str]]]:
    def one(args: list[str]) -> tuple[list[str], subprocess.CompletedProcess[str]]:
        argv = [a.replace("{pw}", str(pw)) for a in args]
        return argv, cli_fork.run(["-c", str(config), *argv], env=os.environ, timeout=120)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, commands))


def _assert_usage_errors(done: list[tuple[list[str], subprocess.CompletedProcess[str]]],
                         *, lines: int | None = 1) -> None:
    wrong = [(args, proc.returncode, proc.stderr) for args, proc in done
             if proc.returncode != 2 or "Traceback" in proc.stderr
             or (lines is not None and len(proc.stderr.strip().splitlines()) != lines)]
    assert wrong == [], "\n".join(f"{' '.join(a)} → exit {c}: {e!r}" for a, c, e in wrong)


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    workspace.job("ok")
    return workspace


def test_an_unknown_job_is_one_line_and_exit_2_for_every_command(ws: Workspace) -> None:
    done = _run_all(ws.config, UNKNOWN_JOB, ws.password_file())
    _assert_usage_errors(done)
    assert all("unknown job 'nosuchjob'" in proc.stderr for _, proc in done)
    assert not (ws.state_dir / "state.db").exists(), "nothing ran"


def test_a_malformed_date_is_one_line_and_exit_2(ws: Workspace) -> None:
    done = _run_all(ws.config, BAD_DATE, ws.password_file())
    _assert_usage_errors(done)
    assert not (ws.root / "x.zip").exists()


def test_a_missing_file_is_one_line_and_exit_2(ws: Workspace) -> None:
    _assert_usage_errors(_run_all(ws.config, MISSING_FILE, ws.password_file()))


def test_notify_without_channels_or_with_bad_values_is_one_line_and_exit_2(
        ws: Workspace) -> None:
    done = _run_all(ws.config, NOTIFY, ws.password_file())
    _assert_usage_errors(done)
    assert "no notification channel" in done[1][1].stderr
    assert "--days must be between 1 and 366" in done[3][1].stderr
    assert not (ws.state_dir / "state.db").exists(), "nothing ran"


@pytest.mark.parametrize("broken", ["missing", "not yaml", "not utf-8", "a directory",
                                    "bad key"])
def test_an_unreadable_config_is_exit_2_for_every_command(ws: Workspace, tmp_path: Path,
                                                          broken: str) -> None:
    config = tmp_path / "broken.yaml"
    if broken == "not yaml":
        config.write_text("jobs_dir: [unclosed\n")
    elif broken == "not utf-8":
        config.write_bytes(b"jobs_dir: \xff\xfe\n")
    elif broken == "a directory":
        config.mkdir()
    elif broken == "bad key":
        config.write_text(ws.config.read_text() + "no_such_key: 1\n")
    done = _run_all(config, EVERY, ws.password_file())
    _assert_usage_errors(done)
    assert all(str(config) in proc.stderr for _, proc in done)
    assert not (ws.state_dir / "state.db").exists(), "nothing ran"


def test_an_unexpected_error_is_one_line_and_the_traceback_is_kept(ws: Workspace) -> None:
    """A bug (here: a state database that is not a database) is not a usage error."""
    ws.state_dir.mkdir()
    (ws.state_dir / "state.db").write_text("not a database")
    proc = ws.run("status")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
