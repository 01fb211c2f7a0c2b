"""answer.ask: a server that accepts and never answers is SILENT within the bound; one that
answers anything is ANSWERED; a closed port is NOT_CONNECTED; the same as a program."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from backupctl.restic import answer
from backupctl.restic.reach import answer_source


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def test_a_server_that_accepts_and_never_answers_is_silent(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    started = time.monotonic()

    assert answer.ask("127.0.0.1", port, False, 0.5) == answer.SILENT
    assert time.monotonic() - started < 10


def test_any_answer_counts(listener: socket.socket) -> None:
    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\n\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    assert answer.ask("127.0.0.1", listener.getsockname()[1], False, 10) == answer.ANSWERED


def test_a_closed_port_is_not_connected() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert answer.ask("127.0.0.1", port, False, 5) == answer.NOT_CONNECTED


def test_as_a_program_on_a_host_it_exits_with_the_answer(listener: socket.socket) -> None:
    done = subprocess.run([sys.executable, "-I", "-c", answer_source(), "127.0.0.1",
                           str(listener.getsockname()[1]), "0", "0.5"], timeout=60)
    assert done.returncode == answer.SILENT
