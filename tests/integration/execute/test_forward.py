"""SshRunner.forward_remote + execute.forward/openssh: an orchestrator's loopback port reachable
on the server's loopback for a block, over a real sshd (the server is this machine): through
OpenSSH's own client when it can, else paramiko's connection."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backupctl.execute import hostkeys
from backupctl.execute.ssh import SshRunner
from tests.conftest import TIMING, Sshd


class Echo:
    """A loopback TCP server answering every byte with the same byte, uppercased."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data.upper())

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.close()


@pytest.fixture
def runner(sshd: Sshd) -> Iterator[SshRunner]:
    ssh = SshRunner(job="t", address="127.0.0.1", port=sshd.port, user="root",
                    identity_file=sshd.identity, known_hosts=sshd.known_hosts, **TIMING)
    yield ssh
    ssh.close()


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while len(received) < len(data) and (chunk := conn.recv(65536)):
            received += chunk
        return received


def _refuses(port: int) -> bool:
    """The port refuses, at once (paramiko's forward is cancelled before the block ends) or
    within moments (OpenSSH's: sshd closes it when the ssh client's connection ends)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        except ConnectionRefusedError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def test_bytes_cross_both_ways_on_several_connections_at_once(
        runner: SshRunner, echo: Echo) -> None:
    payloads = [os.urandom(1 << 20).hex().encode() for _ in range(4)]  # lower-case hex
    results: list[bytes] = [b""] * len(payloads)
    with runner.forward_remote(echo.port) as port:
        assert port != echo.port

        def one(i: int) -> None:
            results[i] = _exchange(port, payloads[i])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(payloads))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert results == [p.upper() for p in payloads]
    assert echo.connections == len(payloads)


def test_leaving_the_block_closes_the_port_and_its_open_connections(
        runner: SshRunner, echo: Echo) -> None:
    with runner.forward_remote(echo.port) as port:
        held = socket.create_connection(("127.0.0.1", port), timeout=30)
        held.sendall(b"x")
        assert held.recv(1) == b"X"
    held.settimeout(30)
    with held, contextlib.suppress(ConnectionResetError):
        assert held.recv(1) == b""  # closed by the orchestrator's end, not left hanging
    assert _refuses(port)
    assert runner.run(["true"], timeout=30).ok  # the connection itself goes on


def test_a_connection_to_a_closed_local_port_is_closed_on_the_host(runner: SshRunner) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        dead = int(probe.getsockname()[1])
    with runner.forward_remote(dead) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.settimeout(30)
        with contextlib.suppress(ConnectionResetError):  # closed, or reset: not left hanging
            assert conn.recv(1) == b""


def _logins(server: Sshd, *, at_least: int = 0) -> int:
    """Logins the server's log shows (its log is written a moment after the login)."""
    deadline = time.monotonic() + 30
    while True:
        count = server.log.read_text().count("Accepted publickey")
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def test_the_bytes_go_through_openssh_with_known_hosts_as_trust_writes_it(
        sshd: Sshd, echo: Echo) -> None:
    """paramiko's known_hosts format (`[127.0.0.1]:PORT`, `backupctl trust`) is read by
    OpenSSH: the forward is its own (second) login, not a channel of the runner's."""
    sshd.known_hosts.unlink()
    hostkeys.add(sshd.known_hosts, hostkeys.fetch("127.0.0.1", sshd.port),
                 expected=sshd.fingerprint())
    runner = SshRunner(job="t", address="127.0.0.1", port=sshd.port, user="root",
                       identity_file=sshd.identity, known_hosts=sshd.known_hosts, **TIMING)
    try:
        with runner.forward_remote(echo.port) as port:
            assert _logins(sshd, at_least=2) == 2
            runner.close()  # the runner's connection gone: OpenSSH's carries the bytes
            assert _exchange(port, b"abc" * 100000) == b"ABC" * 100000
        assert _refuses(port)
    finally:
        runner.close()


def test_a_host_key_openssh_refuses_falls_back_to_the_checked_connection(
        sshd: Sshd, runner: SshRunner, echo: Echo, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """known_hosts changed after the runner's connection was checked (another key for the
    address): OpenSSH refuses the server, never logs in, and the forward is paramiko's."""
    runner.connect()
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    kind, key = Path(f"{other}.pub").read_text().split()[:2]
    sshd.known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    with caplog.at_level(logging.DEBUG, logger="backupctl.execute.openssh"), \
            runner.forward_remote(echo.port) as port:
        assert _exchange(port, b"abc") == b"ABC"
    assert "paramiko's forward instead" in caplog.text
    assert "Host key verification failed" in caplog.text
    assert _logins(sshd) == 1
