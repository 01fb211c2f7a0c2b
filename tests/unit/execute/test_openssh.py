"""execute.openssh: OpenSSH's client for the remote forward, its command line, the port read
from its output, and the cases where it yields None (the caller uses paramiko's forward).
A shell script plays `ssh` here; tests/integration/execute/test_forward.py runs the real one."""

from __future__ import annotations

import os
import time
from pathlib import Path

from backupctl.execute import openssh


def _target(tmp_path: Path) -> openssh.Target:
    identity = tmp_path / "id_ed25519"
    identity.write_text("key\n")
    return openssh.Target(address="db1.example", port=2222, user="root", identity=identity,
                          known_hosts=tmp_path / "known_hosts", keepalive=15, dead_after=60)


def _fake_ssh(tmp_path: Path, body: str) -> Path:
    """An `ssh` that writes its pid to `pid` and then runs `body`."""
    script = tmp_path / "fake-ssh"
    script.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/pid\n{body}\n")
    script.chmod(0o755)
    return script


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_argv_checks_the_host_key_with_backupctls_known_hosts_only(tmp_path: Path) -> None:
    target = _target(tmp_path)
    args = openssh.argv(target, local_port=8000)
    options = {args[i + 1] for i, a in enumerate(args) if a == "-o"}
    assert {"BatchMode=yes", "StrictHostKeyChecking=yes", "UpdateHostKeys=no",
            f"UserKnownHostsFile={target.known_hosts}", "GlobalKnownHostsFile=/dev/null",
            "IdentitiesOnly=yes", "IdentityAgent=none", "ExitOnForwardFailure=yes",
            "ServerAliveInterval=15", "ServerAliveCountMax=4"} <= options
    assert args[1:3] == ["-F", "none"]  # no ~/.ssh/config or /etc/ssh/ssh_config
    assert args[args.index("-R") + 1] == "127.0.0.1:0:127.0.0.1:8000"
    assert args[args.index("-i") + 1] == str(target.identity)
    assert args[-2:] == ["--", "db1.example"]


def test_the_allocated_port_is_read_and_ssh_stopped_with_the_block(tmp_path: Path) -> None:
    ssh = _fake_ssh(tmp_path, "echo 'Allocated port 40123 for remote forward to "
                              "127.0.0.1:8000' >&2\nexec sleep 300")
    with openssh.forward(_target(tmp_path), local_port=8000, ssh=str(ssh)) as port:
        assert port == 40123
        pid = int((tmp_path / "pid").read_text())
        assert not _gone(pid)
    assert _gone(pid)


def test_no_forward_within_the_time_is_none_and_ssh_is_stopped(tmp_path: Path) -> None:
    ssh = _fake_ssh(tmp_path, "exec sleep 300")
    started = time.monotonic()
    with openssh.forward(_target(tmp_path), local_port=8000, ssh=str(ssh),
                         up_within=1.0) as port:
        assert port is None
        assert _gone(int((tmp_path / "pid").read_text()))
    assert time.monotonic() - started < 30


def test_ssh_ending_without_a_forward_is_none_at_once(tmp_path: Path) -> None:
    ssh = _fake_ssh(tmp_path, "echo 'Host key verification failed.' >&2\nexit 255")
    started = time.monotonic()
    with openssh.forward(_target(tmp_path), local_port=8000, ssh=str(ssh),
                         up_within=60.0) as port:
        assert port is None
    assert time.monotonic() - started < 30


def test_no_ssh_program_or_no_key_file_is_none(tmp_path: Path) -> None:
    target = _target(tmp_path)
    with openssh.forward(target, local_port=8000, ssh=str(tmp_path / "no-ssh")) as port:
        assert port is None
    ssh = _fake_ssh(tmp_path, "echo started > ran")
    target.identity.unlink()
    with openssh.forward(target, local_port=8000, ssh=str(ssh)) as port:
        assert port is None
    assert not (tmp_path / "pid").exists()  # nothing was started
