"""SSH faults against a real sshd and real restic: refused keys, bad identity, a server that
is down, killed mid-backup, cut off by the network mid-backup, or silently unreachable
(every packet dropped, no reset) mid-backup (issue #9, SPEC §4, §7).

Each fault: exit 1, the run recorded `failed` with a `fail` evidence record, nothing left
running, and once the fault is repaired the next run succeeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Sshd, need, restic
from tests.integration.cli.helpers import edit_job

from .conftest import (
    SECRET,
    FaultWorkspace,
    TcpProxy,
    assert_recorded,
    json_job,
    restic_locks,
    wait_for,
    wait_gone,
)

BIG = 96 * 1024 * 1024  # restic needs a few seconds for this: time to break things


def _job(ws: FaultWorkspace, sshd: Sshd, name: str = "emr", *, big: int = 0) -> Path:
    ws.job(name, sshd=sshd)
    src = ws.src(name)
    (src / "カルテ.txt").write_text("患者データ\n")
    if big:
        with (src / "big.bin").open("wb") as f:
            for _ in range(big // (8 << 20)):
                f.write(os.urandom(8 << 20))
    return src


def _snapshots(ws: FaultWorkspace, name: str) -> int:
    return len(json.loads(restic(ws.repo(name), "snapshots", "--json",
                                 password=SECRET).stdout))


def _failed_backup(ws: FaultWorkspace, name: str = "emr") -> dict[str, object]:
    proc = ws.run("backup", name, "--json", timeout=240)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    job = json_job(proc)
    assert job["status"] == "failed" and job["error"]
    return job


def _next_backup_succeeds(ws: FaultWorkspace, name: str = "emr") -> dict[str, Any]:
    proc = ws.run("backup", name, "--json", timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json_job(proc)


def test_unknown_host_key_exit_1_recorded_then_trust_and_succeed(
        fws: FaultWorkspace, fsshd: Sshd) -> None:
    _job(fws, fsshd)  # fws.known_hosts does not exist: the server's key is unknown

    job = _failed_backup(fws)

    assert "unknown" in str(job["error"]) and fsshd.fingerprint() in str(job["error"])
    assert not fws.known_hosts.exists(), "trusted on first use"
    assert _snapshots(fws, "emr") == 0
    assert_recorded(fws, kind="backup", statuses=["failed"])
    assert fws.run("trust", "emr", "--fingerprint", fsshd.fingerprint()).returncode == 0
    _next_backup_succeeds(fws)
    assert_recorded(fws, kind="backup", statuses=["failed", "success"])


def test_changed_host_key_exit_1_recorded_nothing_sent(fssh: FaultWorkspace,
                                                       fsshd: Sshd) -> None:
    _job(fssh, fsshd)
    before = fssh.known_hosts.read_text()
    fsshd.rotate_host_key()

    job = _failed_backup(fssh)

    assert "CHANGED" in str(job["error"])
    assert fssh.known_hosts.read_text() == before, "the changed key was accepted"
    assert "Accepted publickey" not in fsshd.log.read_text(), "authenticated to an impostor"
    assert _snapshots(fssh, "emr") == 0
    assert_recorded(fssh, kind="backup", statuses=["failed"])
    assert fssh.run("trust", "emr", "--fingerprint", fsshd.fingerprint()).returncode == 0
    _next_backup_succeeds(fssh)


def test_wrong_identity_exit_1_recorded_then_fixed(fssh: FaultWorkspace, fsshd: Sshd) -> None:
    _job(fssh, fsshd)
    other = fssh.root / "other_id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    edit_job(fssh, "emr", host={"identity_file": str(other)})

    job = _failed_backup(fssh)

    assert "authentication" in str(job["error"]) and str(other) in str(job["error"])
    assert _snapshots(fssh, "emr") == 0
    assert_recorded(fssh, kind="backup", statuses=["failed"])
    edit_job(fssh, "emr", host={"identity_file": str(fsshd.identity)})
    _next_backup_succeeds(fssh)


def test_sshd_stopped_before_the_run_exit_1_then_restarted(fssh: FaultWorkspace,
                                                           fsshd: Sshd) -> None:
    _job(fssh, fsshd)
    fsshd.stop()

    job = _failed_backup(fssh)

    assert f"cannot connect to root@127.0.0.1:{fsshd.port}" in str(job["error"])
    assert_recorded(fssh, kind="backup", statuses=["failed"])
    fsshd.start()
    _next_backup_succeeds(fssh)
    assert_recorded(fssh, kind="backup", statuses=["failed", "success"])


def _session_children(sshd: Sshd) -> list[int]:
    """The per-connection sshd processes (children of the listening one)."""
    assert sshd.proc is not None
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == sshd.proc.pid:
            found.append(int(entry.name))
    return found


def _wait_restic_backup_running(ws: FaultWorkspace, name: str) -> None:
    """restic backup holds its lock in the repository once it is past key derivation."""
    wait_for(lambda: bool(restic_locks(ws.repo(name))), "restic backup to start", timeout=120)


@pytest.mark.slow
def test_sshd_killed_mid_backup_exit_1_recorded_next_run_succeeds(
        fssh: FaultWorkspace, fsshd: Sshd, started: list[subprocess.Popen[str]]) -> None:
    _job(fssh, fsshd, big=BIG)
    proc = fssh.start("backup", "emr", "--json")
    started.append(proc)
    _wait_restic_backup_running(fssh, "emr")

    assert fsshd.proc is not None
    children = _session_children(fsshd)
    os.kill(fsshd.proc.pid, signal.SIGKILL)  # the whole server dies: listener and sessions
    for child in children:
        os.kill(child, signal.SIGKILL)
    fsshd.proc.wait()
    fsshd.proc = None
    out, err = fssh.finish(proc)

    assert proc.returncode == 1, out + err
    assert "lost" in out, out
    assert_recorded(fssh, kind="backup", statuses=["failed"])
    wait_gone(str(fssh.repo("emr")))  # the orphaned remote restic does not live on
    fsshd.start()
    job = _next_backup_succeeds(fssh)
    assert job["snapshot_id"] and job["generations"] >= 1
    assert restic_locks(fssh.repo("emr")) == [], "a stale lock was left in the repository"


@pytest.mark.slow
def test_network_cut_mid_backup_exit_1_recorded_next_run_succeeds(
        fssh: FaultWorkspace, fsshd: Sshd, tcp_proxy: list[TcpProxy],
        started: list[subprocess.Popen[str]]) -> None:
    _job(fssh, fsshd, big=BIG)
    proxy = TcpProxy(fsshd.port)
    tcp_proxy.append(proxy)
    key = fsshd.known_hosts_line().split(" ", 1)[1]
    fssh.known_hosts.write_text(f"[127.0.0.1]:{proxy.port} {key}")
    edit_job(fssh, "emr", host={"port": proxy.port})
    proc = fssh.start("backup", "emr", "--json")
    started.append(proc)
    _wait_restic_backup_running(fssh, "emr")

    proxy.cut()
    out, err = fssh.finish(proc, timeout=180)

    assert proc.returncode == 1, out + err
    assert "lost" in out, out
    assert_recorded(fssh, kind="backup", statuses=["failed"])
    wait_gone(str(fssh.repo("emr")))  # sshd ends the session's restic when the link drops
    # The network is back (a new link): the next run works.
    healed = TcpProxy(fsshd.port)
    tcp_proxy.append(healed)
    fssh.known_hosts.write_text(f"[127.0.0.1]:{healed.port} {key}")
    edit_job(fssh, "emr", host={"port": healed.port})
    job = _next_backup_succeeds(fssh)
    assert job["snapshot_id"]
    assert restic_locks(fssh.repo("emr")) == [], "a stale lock was left in the repository"


@pytest.fixture
def blackhole() -> Iterator[list[list[str]]]:
    """iptables rules added by the test (`-I INPUT …` argv tails), deleted afterwards."""
    rules: list[list[str]] = []
    yield rules
    for rule in rules:
        subprocess.run([need("iptables"), "-D", "INPUT", *rule], capture_output=True)


KEEPALIVE, DEAD_AFTER = 1, 5  # seconds: the shortest ssh_dead_after allowed


@pytest.mark.slow
def test_silently_dropped_network_mid_backup_fails_instead_of_hanging(
        fssh: FaultWorkspace, fsshd: Sshd, blackhole: list[list[str]],
        started: list[subprocess.Popen[str]]) -> None:
    """Every packet to and from the server dropped, nothing reset (a dead switch, a VPN
    that stops forwarding): SSH keepalives go unanswered and TCP_USER_TIMEOUT ends the
    connection, so the run fails and is recorded instead of waiting for command_timeout.
    With ssh_keepalive and ssh_dead_after short, within seconds (the defaults' bound, 2 min
    15 s, is the same mechanism and would only make the suite wait)."""
    iptables = need("iptables")
    fssh.write_config(ssh_keepalive=f"{KEEPALIVE}s", ssh_dead_after=f"{DEAD_AFTER}s")
    _job(fssh, fsshd, big=BIG)
    proc = fssh.start("backup", "emr", "--json")
    started.append(proc)
    _wait_restic_backup_running(fssh, "emr")
    children = _session_children(fsshd)

    for direction in ("--dport", "--sport"):
        rule = ["-i", "lo", "-p", "tcp", direction, str(fsshd.port), "-j", "DROP"]
        subprocess.run([iptables, "-I", "INPUT", *rule], check=True)
        blackhole.append(rule)
    # Generous for a loaded machine, yet well below the defaults' 2 min 15 s: a run that
    # ignored the settings would time out here.
    out, err = fssh.finish(proc, timeout=KEEPALIVE + DEAD_AFTER + 60)

    assert proc.returncode == 1, out + err
    assert "lost" in out, out
    assert_recorded(fssh, kind="backup", statuses=["failed"])
    # The server side is sshd's to end (ClientAliveInterval, docs/troubleshooting.md); here
    # the admin ends it, the network comes back, and the next run works.
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    wait_gone(str(fssh.repo("emr")))
    for rule in blackhole:
        subprocess.run([iptables, "-D", "INPUT", *rule], check=True)
    blackhole.clear()
    job = _next_backup_succeeds(fssh)
    assert job["snapshot_id"]
    assert restic_locks(fssh.repo("emr")) == [], "a stale lock was left in the repository"
