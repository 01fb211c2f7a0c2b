"""SshRunner.forward_remote + execute.forward: an orchestrator's loopback port reachable on
the server's loopback for a block, over a real sshd (the server is this machine)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator

import pytest

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
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


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
