"""execute.serve: a real `rclone serve restic` on loopback, its password through a pipe only,
and never outliving the process that started it (SPEC §15)."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from backupctl.errors import BackupctlError
from backupctl.execute import Secret
from backupctl.execute.serve import rest_server, starting
from tests.leaks import LeakWatch

# Starts a server the way backupctl does, says where, then waits to be killed.
HOLDER = """
import sys, time
from pathlib import Path
from backupctl.execute import Secret
from backupctl.execute.serve import rest_server
with rest_server(Path(sys.argv[1]), user="u", password=Secret("pw-" + "x" * 40)) as server:
    print(server.port, server.pid, flush=True)
    time.sleep(600)
"""


def _status(port: int, user: str, password: str, method: str = "GET",
            path: str = "/config") -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    request.add_header("Authorization", "Basic " + base64.b64encode(
        f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _alive(pid: int) -> bool:
    try:
        return b"rclone" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_the_password_reaches_rclone_through_a_pipe_only(tmp_path: Path) -> None:
    password = f"serve-canary-{secrets.token_hex(16)}"
    (tmp_path / "repo" / "keys").mkdir(parents=True)
    (tmp_path / "repo" / "config").write_bytes(b"not really a config")
    watch = LeakWatch(password.encode(), interval=0.005)
    watch.start()
    try:
        with rest_server(tmp_path / "repo", user="backupctl", password=Secret(password)) as srv:
            cmdline = Path(f"/proc/{srv.pid}/cmdline").read_bytes().split(b"\0")
            right = _status(srv.port, "backupctl", password)
            wrong = _status(srv.port, "backupctl", password + "x")
            deleted = _status(srv.port, "backupctl", password, "DELETE")
            time.sleep(0.1)  # a few more sweeps while it runs
    finally:
        watch.stop()

    assert (right, wrong, deleted) == (200, 401, 403)
    assert b"--append-only" in cmdline and b"--htpasswd" in cmdline
    assert any(word.startswith(b"/dev/fd/") for word in cmdline)
    assert not _alive(srv.pid)
    assert watch.scan([tmp_path]) == [] and watch.sweeps > 3


def test_rclone_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "repo")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        port, pid = (int(w) for w in holder.stdout.readline().split())
        assert _alive(pid) and _status(port, "u", "pw-" + "x" * 40, path="/") != 401
        holder.send_signal(signal.SIGKILL)  # no cleanup runs in the parent
        holder.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "rclone outlived the process that started it"
    finally:
        holder.kill()
        holder.wait()


def test_rclone_log_settings_of_the_admin_do_not_hide_its_address(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RCLONE_* variables are rclone flags; -q would hide the line that says the port."""
    monkeypatch.setenv("RCLONE_QUIET", "true")
    monkeypatch.setenv("RCLONE_LOG_LEVEL", "ERROR")
    (tmp_path / "repo").mkdir()
    with rest_server(tmp_path / "repo", user="u", password=Secret("p" * 43)) as server:
        assert _status(server.port, "u", "p" * 43, path="/") != 401


def test_a_missing_rclone_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackupctlError, match="apt install rclone") as raised, \
            rest_server(tmp_path, user="u", password=Secret("p" * 43),
                        rclone="/nonexistent/rclone"):
        pytest.fail("served")
    assert raised.value.reason == "repository"
    assert os.environ.get("RCLONE_QUIET") is None


def test_a_started_rclone_is_waited_for_only_when_needed_and_stopped_with_the_block(
        tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    with starting(tmp_path / "repo", user="u", password=Secret("p" * 43)) as pending:
        began = time.monotonic()  # the caller's own work would go here, beside rclone's start
        server = pending.ready()
        again = pending.ready()
        answered = _status(server.port, "u", "p" * 43, path="/")

    assert again == server and server.pid == pending.proc.pid
    assert answered != 401 and time.monotonic() - began < 30
    assert not _alive(server.pid)
