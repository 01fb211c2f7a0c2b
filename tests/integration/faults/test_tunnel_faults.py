"""A backup through the tunnel (a job with only repository.local_url, SPEC §15) killed or
stopped mid-way: nothing of the tunnel outlives the run (no rclone, the host's forwarded port
refuses), the run is recorded, the next one succeeds. Real sshd, restic, rclone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests import yaml_helpers
from tests.conftest import Sshd

from .conftest import FaultWorkspace, assert_recorded, restic_locks, runs, wait_for

BIG = 96 * 1024 * 1024  # restic needs a few seconds for this through the tunnel


def _served_job(ws: FaultWorkspace, sshd: Sshd, name: str) -> None:
    ws.job(name, sshd=sshd)
    path = ws.jobs_dir / f"{name}.yaml"
    data = YAML(typ="safe").load(path.read_text())
    data["repository"]["local_url"] = data["repository"].pop("url")
    path.write_text(yaml_helpers.dump(data))
    src = ws.src(name)
    (src / "カルテ.txt").write_text("患者データ\n")
    with (src / "big.bin").open("wb") as f:
        for _ in range(BIG // (8 << 20)):
            f.write(os.urandom(8 << 20))


def _children(parent: int, name: bytes) -> list[int]:
    """Processes named `name` whose parent is `parent` (a process of this test's)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv0 = (stat.parent / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if ppid == parent and argv0.rsplit(b"/", 1)[-1] == name:
            found.append(int(stat.parent.name))
    return found


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


def _forwarded_ports(sshd: Sshd) -> set[int]:
    """Loopback ports listened on by the test sshd's sessions: the hosts' ends of forwards."""
    assert sshd.proc is not None
    inodes: set[str] = set()
    for pid in _descendants(sshd.proc.pid):
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes |= {link[8:-1] for link in links if link.startswith("socket:[")}
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and inode in inodes and address.startswith("0100007F:"):
            ports.add(int(address.split(":")[1], 16))
    return ports - {sshd.port}


def _refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def _gone(pid: int) -> bool:
    try:
        return b"rclone" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def _start_mid_backup(ws: FaultWorkspace, sshd: Sshd,
                      started: list[subprocess.Popen[str]]) -> tuple[
                          subprocess.Popen[str], int, int]:
    """`backup emr` started and caught with the host's restic writing through the tunnel;
    returns the process, its rclone's pid and the host's forwarded port."""
    _served_job(ws, sshd, "emr")
    proc = ws.start("backup", "emr", "--json")
    started.append(proc)
    wait_for(lambda: bool(restic_locks(ws.repo("emr"))), "restic backup through the tunnel",
             timeout=120)
    [rclone] = _children(proc.pid, b"rclone")
    [port] = _forwarded_ports(sshd)
    assert not _refuses(port)
    return proc, rclone, port


@pytest.mark.slow
def test_a_sigkilled_backup_leaves_no_rclone_and_no_forward(
        fssh: FaultWorkspace, fsshd: Sshd, started: list[subprocess.Popen[str]]) -> None:
    proc, rclone, port = _start_mid_backup(fssh, fsshd, started)

    os.kill(proc.pid, signal.SIGKILL)  # backupctl alone: rclone is in a session of its own
    fssh.finish(proc)

    wait_for(lambda: _gone(rclone), "rclone to die with backupctl", timeout=30)
    wait_for(lambda: _refuses(port), "the host's forwarded port to close", timeout=60)
    assert [r["status"] for r in runs(fssh)] == ["running"]  # recorded on the next start
    again = fssh.run("backup", "emr", "--json", timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_recorded(fssh, kind="backup", statuses=["interrupted", "success"])


@pytest.mark.slow
def test_sigterm_mid_backup_records_interrupted_and_closes_the_tunnel(
        fssh: FaultWorkspace, fsshd: Sshd, started: list[subprocess.Popen[str]]) -> None:
    proc, rclone, port = _start_mid_backup(fssh, fsshd, started)

    os.kill(proc.pid, signal.SIGTERM)  # systemd stopping the service
    out, err = fssh.finish(proc, timeout=60)

    assert proc.returncode == 1, out + err
    assert [r["status"] for r in runs(fssh)] == ["interrupted"]  # recorded at once
    assert _gone(rclone), "rclone outlived the run"  # stopped before backupctl exited
    deadline = time.monotonic() + 10
    while not _refuses(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _refuses(port), "the host's forwarded port is still open"
    again = fssh.run("backup", "emr", "--json", timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_recorded(fssh, kind="backup", statuses=["interrupted", "success"])
