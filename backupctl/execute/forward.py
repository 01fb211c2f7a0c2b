"""The orchestrator's end of a remote port forward: each forwarded connection (a channel of
the SSH connection) bridged to a new socket to a port on the orchestrator's loopback.

`SshRunner.forward_remote` asks the server for the forward and hands each incoming channel
to `Bridges.open`; this module only moves bytes (it never imports paramiko: a channel is
anything with `recv`/`sendall`/`close`/`fileno`).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable
from typing import Protocol

LOOPBACK = "127.0.0.1"
CONNECT_TIMEOUT = 15.0
CHUNK = 65536
# One direction of a bridge: read from here, write there, pass an end on.
_End = tuple[Callable[[int], bytes], Callable[[bytes], object], Callable[[], object]]


class Channel(Protocol):
    closed: bool

    def recv(self, nbytes: int) -> bytes: ...

    def sendall(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def shutdown_write(self) -> None: ...

    def fileno(self) -> int: ...


class Bridges:
    """The connections of one forward; `close()` ends them all and refuses new ones."""

    def __init__(self, local_port: int) -> None:
        self.local_port = local_port
        self._open: list[tuple[Channel, socket.socket]] = []
        self._closed = False
        self._lock = threading.Lock()

    def open(self, channel: Channel, _origin: object, _server: object) -> None:
        """The forward's handler. paramiko calls it on its transport thread, which must not
        block: the bridge runs on a thread of its own."""
        with self._lock:
            if self._closed:
                channel.close()
                return
        threading.Thread(target=self._bridge, args=(channel,), daemon=True,
                         name="ssh-forward").start()

    def _bridge(self, channel: Channel) -> None:
        try:
            sock = socket.create_connection((LOOPBACK, self.local_port), timeout=CONNECT_TIMEOUT)
        except OSError:
            channel.close()
            return
        with self._lock:
            if self._closed:
                sock.close()
                channel.close()
                return
            self._open.append((channel, sock))
        try:
            pipe(channel, sock)
        finally:
            channel.close()
            sock.close()
            with self._lock, contextlib.suppress(ValueError):
                self._open.remove((channel, sock))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pairs, self._open = self._open, []
        for channel, sock in pairs:
            channel.close()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes its bridge


def pipe(channel: Channel, sock: socket.socket) -> None:
    """Bytes both ways until both sides have ended (an end from one side is passed on as
    a half-close) or either fails."""
    sock.settimeout(None)

    def sock_done() -> None:
        sock.shutdown(socket.SHUT_WR)

    ends: dict[int, _End] = {channel.fileno(): (channel.recv, sock.sendall, sock_done),
                             sock.fileno(): (sock.recv, channel.sendall, channel.shutdown_write)}
    while ends and not channel.closed:
        try:
            ready, _, _ = select.select(list(ends), [], [], 5.0)
            for fd in ready:
                recv, send, finish = ends[fd]
                if data := recv(CHUNK):
                    send(data)
                else:
                    finish()
                    del ends[fd]
        # A broken channel raises paramiko's own errors (not imported here: only ssh.py
        # may): whatever the failure, this connection is over and restic sees it closed.
        except Exception:
            return
