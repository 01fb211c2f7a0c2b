"""Real servers for the notification tests: an SMTP server process, an HTTP receiver, and a
server that accepts connections and never answers.

- `SmtpServer`: aiosmtpd in its own process (tests/smtp_server.py) writing a Maildir that
  `messages()` reads back with the standard `mailbox` module.
- `HttpReceiver`: a loopback `http.server` in a thread, recording every request (method,
  path, body) — for Apprise `json://` URLs and healthchecks-style pings.
- `Silent`: a listening socket that accepts and never says a word (a hung server).
- `Trickle`: an HTTP server that answers one byte a second and never ends (a hostile
  healthchecks endpoint: each read succeeds, so no socket timeout fires).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import mailbox
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def _delivery_order(key: str) -> tuple[int, int, int]:
    """Maildir names are SECONDS.M<micro>P<pid>Q<count>.host: order of delivery."""
    match = re.match(r"(\d+)\.M(\d+)P\d+Q(\d+)", key)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match \
        else (0, 0, 0)


@dataclass
class SmtpServer:
    port: int
    maildir: Path
    process: subprocess.Popen[str]
    user: str | None = None

    def url(self, *, user: str | None = None, scheme: str = "smtp") -> str:
        who = f"{user}@" if user else ""
        return f"{scheme}://{who}127.0.0.1:{self.port}"

    def messages(self) -> list[EmailMessage]:
        box = mailbox.Maildir(self.maildir, factory=None, create=False)
        out = []
        for key in sorted(box.keys(), key=_delivery_order):
            raw = box.get_bytes(key)
            out.append(email.message_from_bytes(raw, policy=email.policy.default))
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_smtp(root: Path, *, user: str | None = None, password: str | None = None,
               cert: tuple[Path, Path] | None = None) -> SmtpServer:
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    maildir = root / "Maildir"
    argv = [sys.executable, "-m", "tests.smtp_server", "--port", str(port), "--maildir",
            str(maildir)]
    if user:
        secret = root / "smtp-server-password"
        secret.write_text((password or "") + "\n")
        argv += ["--user", user, "--password-file", str(secret)]
    if cert:
        argv += ["--cert", str(cert[0]), "--key", str(cert[1])]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "READY":
        process.kill()
        pytest.fail(f"the SMTP server did not start: {line!r}")
    return SmtpServer(port=port, maildir=maildir, process=process, user=user)


@dataclass
class Request:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    port: int
    requests: list[Request] = field(default_factory=list)
    status: int = 200
    server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


def start_http() -> HttpReceiver:
    receiver = HttpReceiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            receiver.requests.append(Request(self.command, self.path, body,
                                             dict(self.headers.items())))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_POST = do_GET = do_PUT = _record

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = int(server.server_address[1])
    receiver.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


class Silent:
    """Accepts TCP connections and never answers (an SMTP server that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = self.sock.accept()
                self.held.append(conn)

    def close(self) -> None:
        self._stop.set()
        for conn in self.held:
            conn.close()
        self.sock.close()


class Trickle:
    """An HTTP server that answers one byte a second, forever: every read succeeds, so no
    socket timeout ever fires (a hostile or broken healthchecks endpoint)."""

    def __init__(self, *, interval: float = 1.0) -> None:
        self.interval = interval
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.requests: list[bytes] = []  # the first bytes of each request
        self.sent = 0  # bytes trickled, all connections
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = self.sock.accept()
                self._held.append(conn)
                threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(5)
            self.requests.append(conn.recv(65536))
            answer = b"HTTP/1.1 200 OK\r\nX-Slow: "
            index = 0
            while not self._stop.is_set():
                conn.sendall(answer[index:index + 1] if index < len(answer) else b"a")
                index += 1
                self.sent += 1
                self._stop.wait(self.interval)

    def close(self) -> None:
        self._stop.set()
        for conn in self._held:
            conn.close()
        self.sock.close()


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp(tmp_path / "smtp")
    yield server
    server.stop()


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = start_http()
    yield receiver
    assert receiver.server is not None
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def silent_server() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()


@pytest.fixture
def trickle_server() -> Iterator[Trickle]:
    server = Trickle()
    yield server
    server.close()
