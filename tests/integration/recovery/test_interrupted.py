"""SIGTERM mid-restore (systemd stopping the service, an admin's Ctrl-C): the run is recorded
`interrupted` at once and nothing of the tunnel outlives it (no rclone serving the repository,
the replacement server's forwarded port refuses). Real sshd, restic, rclone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import BACKUPCTL, Sshd, Workspace
from tests.integration.faults.conftest import processes_mentioning, wait_for
from tests.integration.recovery.conftest import hostile_tree, rows, ssh_target

BIG = 128 * 1024 * 1024  # restic on the target needs a few seconds for it through the tunnel


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    found, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return found - {root}


def _restic_restoring(server: Sshd) -> bool:
    """restic restore runs under the replacement server's sshd (this test's own)."""
    assert server.proc is not None
    for pid in _descendants(server.proc.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"restic") and b"restore" in argv:
            return True
    return False


def _forwarded_ports(server: Sshd) -> set[int]:
    """Loopback ports the replacement sshd's sessions listen on: the ends of forwards."""
    assert server.proc is not None
    inodes: set[str] = set()
    for pid in _descendants(server.proc.pid):
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes |= {link[8:-1] for link in links if link.startswith("socket:[")}
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes and fields[1].startswith("0100007F:"):
            ports.add(int(fields[1].split(":")[1], 16))
    return ports - {server.port}


def _refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def test_sigterm_mid_restore_records_interrupted_and_closes_the_tunnel(
        workspace: Workspace, replacement: Sshd, tmp_path: Path) -> None:
    src = hostile_tree(workspace.root / "src" / "emr")
    with (src / "big.bin").open("wb") as f:
        for _ in range(BIG // (8 << 20)):
            f.write(os.urandom(8 << 20))
    workspace.job("emr", source=src)
    assert workspace.run("backup", "emr").returncode == 0
    repo = str(workspace.root / "repos" / "emr")
    proc = subprocess.Popen([*BACKUPCTL, "-c", str(workspace.config), "restore", "emr",
                             "--to", ssh_target(replacement, tmp_path / "new"), "--identity",
                             str(replacement.identity), "--snapshot", "latest"],
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _restic_restoring(replacement), "restic restore on the target",
                 timeout=120)
        [port] = _forwarded_ports(replacement)
        assert processes_mentioning(repo)  # rclone serves the repository
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 1, out + err
    [row] = rows(workspace, "SELECT status, error FROM runs WHERE kind = 'recovery'")
    assert row["status"] == "interrupted", row["error"]
    assert processes_mentioning(repo) == []  # rclone stopped before backupctl exited
    deadline = time.monotonic() + 10
    while not _refuses(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _refuses(port), "the replacement server's forwarded port is still open"
