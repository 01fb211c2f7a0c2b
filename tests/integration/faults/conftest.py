"""Fault-injection fixtures: a password-leak watcher used by every fault test, workspaces
whose repositories use a password unique to this test session, a killable TCP proxy, and
helpers that read the recorded state (issue #9).

Every test in this folder runs under `leak_watch` (autouse): a thread samples
`/proc/*/cmdline` and `/proc/*/environ` of every process while the test runs, and at the
end the CLI's stdout/stderr (text and `--json`), the workspace (state database with its
evidence, logs, reports), the sshd log and the source host's temporary and cache
directories are searched for the repository password. Any hit fails the test.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import restic_kdf
from tests.conftest import BACKUPCTL, Sshd, Workspace, make_sshd, need
from tests.leaks import LeakWatch

# Unique per test session, so files and processes of other test sessions on this machine
# (which all use conftest.PASSWORD) can never be mistaken for a leak of ours.
SECRET = f"fault-canary-{secrets.token_hex(12)}"
# Every password file the tests wrote: a test that ends within the watcher's clock slack of
# the next one's start must not have its own password file counted as the next one's leak.
PASSWORD_FILES: set[Path] = set()


# -- the leak watcher ---------------------------------------------------------------------

@pytest.fixture(autouse=True)
def leak_watch(tmp_path: Path, contained: Path) -> Iterator[LeakWatch]:
    """Fails the test if the repository password leaked anywhere while it ran.

    The source host is this machine: its temp directory and restic's cache are its disk.
    The test's processes have their own under the test's directory (`contained`; fsshd's
    sessions too), so the scan reads what this test made, not other tests' files in /tmp."""
    watch = LeakWatch(SECRET.encode())
    watch.start()
    yield watch
    watch.stop()
    watch.allowed |= PASSWORD_FILES
    hits = watch.scan([tmp_path, Path("/var/tmp"), Path("/dev/shm")])
    assert watch.sweeps > 0, "the leak watcher never sampled /proc"
    assert hits == [], "repository password leaked:\n" + "\n".join(hits)


# -- workspaces ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def fault_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One repository initialised with this session's unique password; tests copy it."""
    need("restic")
    root = tmp_path_factory.mktemp("fault-template")
    subprocess.run(["restic", "init", "-q", "--repo", str(root / "repo"), "--password-file",
                    "/dev/stdin"], input=(SECRET + "\n").encode(), check=True,
                   capture_output=True)
    # Every restic start in a fault test would otherwise pay ~0.5 s of scrypt CPU, as the
    # suite's other repositories no longer do (tests/restic_kdf.py).
    restic_kdf.cheapen(root / "repo", SECRET)
    return root / "repo"


@dataclass
class FaultWorkspace(Workspace):
    """A Workspace whose password is SECRET and whose CLI output goes to the watcher."""

    watch: LeakWatch | None = None

    def password_file(self, name: str = "pw", password: str = SECRET) -> Path:
        path = super().password_file(name, password)
        PASSWORD_FILES.add(path)
        if self.watch is not None:
            self.watch.allowed.add(path)
        return path

    def run(self, *args: str, check: bool = False, timeout: float = 300,
            env: dict[str, str] | None = None, input: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        proc = super().run(*args, check=check, timeout=timeout, env=env, input=input)
        self.record(proc.stdout, proc.stderr, args)
        return proc

    def record(self, stdout: str, stderr: str, args: object) -> None:
        if self.watch is not None:
            self.watch.text(f"stdout of {args}", stdout)
            self.watch.text(f"stderr of {args}", stderr)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """The CLI in the background, in its own session (so a test can kill its group)."""
        return subprocess.Popen([*BACKUPCTL, "-c", str(self.config), *args], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)

    def finish(self, proc: subprocess.Popen[str], timeout: float = 120) -> tuple[str, str]:
        """Its output, once it and every process of its session are gone and reaped: a
        killed restic stays a zombie (empty cmdline) until init reaps it, and restic counts
        a lock whose PID exists as live, so a run started at once would find it locked."""
        out, err = proc.communicate(timeout=timeout)
        self.record(out, err, proc.args)
        wait_for(lambda: not session_members(proc.pid), f"session {proc.pid} to be reaped", 60)
        return out, err

    def repo(self, name: str) -> Path:
        return self.root / "repos" / name

    def src(self, name: str) -> Path:
        return self.root / "src" / name


def _workspace(root: Path, template: Path, watch: LeakWatch) -> FaultWorkspace:
    ws = FaultWorkspace(root=root, repo_template=template, known_hosts=root / "known_hosts",
                        watch=watch)
    ws.root.mkdir(parents=True)
    ws.write_config()
    watch.roots.append(root)
    return ws


@pytest.fixture
def fws(tmp_path: Path, fault_template: Path, leak_watch: LeakWatch) -> FaultWorkspace:
    """A fault workspace for local jobs."""
    return _workspace(tmp_path / "ws", fault_template, leak_watch)


@pytest.fixture
def fsshd(tmp_path: Path, leak_watch: LeakWatch) -> Iterator[Sshd]:
    """A real sshd whose log and directory are scanned for leaks."""
    server = make_sshd(tmp_path / "sshd")
    server.start()
    server.trust()
    leak_watch.roots.append(server.root)
    yield server
    server.stop()


@pytest.fixture
def fssh(fws: FaultWorkspace, fsshd: Sshd) -> FaultWorkspace:
    """A fault workspace that trusts the test sshd."""
    shutil.copy(fsshd.known_hosts, fws.known_hosts)
    return fws




# -- a TCP proxy to cut the network -------------------------------------------------------

class TcpProxy:
    """Forwards 127.0.0.1:port → 127.0.0.1:target; `cut()` drops every connection at once
    (RST, like a switch losing power) and stops listening."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.pumps: list[threading.Thread] = []
        self.bytes = 0
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self.sockets += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    pump = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                    self.pumps.append(pump)
                    pump.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
                self.bytes += len(chunk)
        except OSError:
            pass
        if not self._closed:  # an orderly end from one side is passed on
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    # linger 0: close() sends RST, the connection is gone, not ended
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    sock.shutdown(socket.SHUT_RD)  # wakes the pump blocked in recv()
            for pump in self.pumps:
                pump.join(timeout=10)
            for sock in self.sockets:
                sock.close()
            self.sockets.clear()


@pytest.fixture
def tcp_proxy() -> Iterator[list[TcpProxy]]:
    proxies: list[TcpProxy] = []
    yield proxies
    for proxy in proxies:
        proxy.cut()


# -- reading what was recorded ------------------------------------------------------------

def rows(ws: Workspace, table: str) -> list[dict[str, Any]]:
    db = ws.state_dir / "state.db"
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        order = "seq" if table == "evidence" else "id"
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order}")]


def runs(ws: Workspace, kind: str | None = None) -> list[dict[str, Any]]:
    return [r for r in rows(ws, "runs") if kind is None or r["kind"] == kind]


def assert_recorded(ws: Workspace, *, kind: str, statuses: list[str]) -> None:
    """The runs of `kind` have `statuses`, and every finished run has one evidence record
    with the matching result, and the chain verifies."""
    got = runs(ws, kind)
    assert [r["status"] for r in got] == statuses, got
    evidence = {r["run_id"]: r for r in rows(ws, "evidence")}
    for run in got:
        if run["status"] == "running":
            continue
        record = evidence.get(run["id"])
        assert record is not None, f"run {run['id']} has no evidence record"
        assert record["kind"] == kind
        assert record["result"] == ("pass" if run["status"] == "success" else "fail")
    check = ws.run("evidence", "verify", "--db", "--json")
    assert check.returncode == 0, check.stdout + check.stderr


def processes_mentioning(marker: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            data = cmdline.read_bytes()
        except OSError:
            continue
        if marker.encode() in data:
            found.append(data.replace(b"\0", b" ").decode(errors="replace"))
    return found


def session_members(sid: int) -> list[int]:
    """Every process of session `sid` (zombies too: they keep their /proc entry)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # the name may hold ')'
        except OSError:
            continue
        if int(fields[3]) == sid:  # state, ppid, pgrp, session
            found.append(int(stat.parent.name))
    return found


_LOCK_ID = re.compile(r"[0-9a-f]{64}")


def wait_gone(marker: str, timeout: float = 60) -> None:
    """Wait until no process mentions `marker`; fail naming the survivors."""
    deadline = time.monotonic() + timeout
    while (alive := processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"left behind: {alive}"


def wait_for(predicate: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def scratch_leftovers(ws: Workspace) -> list[Path]:
    return sorted(ws.scratch_dir.rglob("*")) if ws.scratch_dir.exists() else []


def restic_locks(repo: Path) -> list[Path]:
    """The lock files restic reads: named by their 64-hex ID. A local-backend write goes
    through `<id>-tmp-<n>` first, which restic ignores; a process killed between create and
    rename leaves one behind (harmless), so it is neither "a lock taken" nor "a lock left"."""
    if not (repo / "locks").exists():
        return []
    return sorted(p for p in (repo / "locks").iterdir() if _LOCK_ID.fullmatch(p.name))


def json_job(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The single job of a --json run (stdout is exactly one JSON object)."""
    assert proc.stdout.strip(), proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["exit_code"] == proc.returncode
    [job] = payload["jobs"]
    return dict(job)
