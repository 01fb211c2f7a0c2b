"""The lease watchdog: is the job's lock still ours? (state/leases.py holds the protocol.)

A held lease's connection is idle between the run's steps; a thread asks the server every
`probe_interval` whether the advisory lock is still held by that session. No answer within
`probe_timeout`, an error, or "no" marks the lease lost (`Lease.lost`, `on_lost`), always
before the server can have freed the lock (`LeaseSettings`), so the run stops before another
orchestrator takes the job over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from backupctl.errors import BackupctlError
from backupctl.execute import Scope, current
from backupctl.state import pgconn

log = logging.getLogger(__name__)

_HELD = ("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
         "AND pid = pg_backend_pid() AND classid = %s::bigint::oid "
         "AND objid = %s::bigint::oid AND objsubid = 1)")

@dataclass
class Lease:
    """A held job lease. `lost` is set (from the watchdog thread) when it is no longer ours."""

    job: str
    kind: str
    orchestrator: str
    since: str
    lost: threading.Event = field(default_factory=threading.Event, repr=False)
    lost_reason: str | None = None
    # the commands of the run holding it (execute.job_scope): a loss stops them, no other job's
    scope: Scope = field(default_factory=current, repr=False)

    def check(self) -> None:
        """Raise LeaseLost if the lease was lost (call between the steps of a run)."""
        if self.lost.is_set():
            raise LeaseLost(f"{self.job}: {self.lost_reason or 'lease lost'}; the run was "
                            "stopped so that another orchestrator can take the job over")


class LeaseLost(BackupctlError):
    """The connection holding the lease is gone: stop the run (exit 1)."""


@dataclass(frozen=True)
class LeaseSettings:
    """How a lease connection notices a dead network, and how fast.

    The watchdog notices within `probe_interval + probe_timeout` (15 s by default); the
    server frees the lock after `keepalive.dead_after()` (30 s) of silence. The first must be
    the shorter, so that a cut-off run stops before another orchestrator can start the job.
    """

    keepalive: pgconn.Keepalive = pgconn.DEFAULT
    probe_interval: float = 5.0
    probe_timeout: float = 10.0

    @classmethod
    def following(cls, keepalive: pgconn.Keepalive) -> LeaseSettings:
        """Probe timings scaled to `keepalive` (the defaults for the default keepalive): a
        probe every sixth, an answer within a third of the server's bound."""
        dead = keepalive.dead_after()
        return cls(keepalive=keepalive, probe_interval=dead / 6, probe_timeout=dead / 3)

    def __post_init__(self) -> None:
        if self.probe_interval + self.probe_timeout >= self.keepalive.dead_after():
            raise ValueError("the watchdog must notice a lost lease before the server frees "
                             "it: probe_interval + probe_timeout < keepalive.dead_after()")


class Watchdog:
    """Asks, every `probe_interval`, whether the lease's lock is still held by our session;
    no answer within `probe_timeout`, an error, or "no" marks the lease lost."""

    def __init__(self, conn: psycopg.Connection[Any], lease: Lease, ids: tuple[int, int],
                 settings: LeaseSettings, on_lost: Callable[[Lease], None] | None) -> None:
        self.conn = conn
        self.lease = lease
        self.ids = ids
        self.settings = settings
        self.on_lost = on_lost
        self.stopping = threading.Event()
        self.probe: threading.Thread | None = None  # the probe in flight, if any
        self.thread = threading.Thread(target=self._loop, name=f"lease-watchdog-{lease.job}",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(self.settings.probe_timeout + 1)
        if self.thread.is_alive():  # a probe hangs: the connection is as good as gone
            self._lose(f"PostgreSQL did not answer within {self.settings.probe_timeout:g} s")

    def _loop(self) -> None:
        while not self.stopping.wait(self.settings.probe_interval):
            problem = self._ask()
            if problem is not None:
                if not self.stopping.is_set():
                    self._lose(problem)
                return

    def _ask(self) -> str | None:
        answer: dict[str, Any] = {}

        def probe() -> None:
            try:
                row = self.conn.execute(_HELD, self.ids).fetchone()
                answer["held"] = bool(row and row[0])
            except psycopg.Error as exc:
                answer["error"] = first_line(exc)

        self.probe = threading.Thread(target=probe, name=f"lease-probe-{self.lease.job}",
                                      daemon=True)
        self.probe.start()
        self.probe.join(self.settings.probe_timeout)
        if self.probe.is_alive():
            return (f"the state database did not answer within "
                    f"{self.settings.probe_timeout:g} s (network cut?)")
        if "error" in answer:
            return f"the connection to the state database was lost ({answer['error']})"
        if not answer.get("held"):
            return "the job's lease is no longer held by this orchestrator"
        return None

    def _lose(self, reason: str) -> None:
        if self.lease.lost.is_set():
            return
        self.lease.lost_reason = f"lease lost: {reason}"
        self.lease.lost.set()
        log.error("%s: %s", self.lease.job, self.lease.lost_reason)
        if self.on_lost is not None:
            try:
                self.on_lost(self.lease)
            except Exception:  # the callback's failure must not hide the loss
                log.exception("%s: on_lost callback failed", self.lease.job)


def close(conn: psycopg.Connection[Any], watchdog: Watchdog | None) -> None:
    """Close the lease connection, also when a probe is stuck on it (silent network).

    shutdown() of the socket wakes the stuck probe at once; the probe thread is then joined
    before libpq frees the connection under it.
    """
    probe = watchdog.probe if watchdog is not None else None
    if probe is not None and probe.is_alive():
        with contextlib.suppress(OSError, psycopg.Error):
            sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
            with sock:
                sock.shutdown(socket.SHUT_RDWR)
        probe.join(5)
        if probe.is_alive():
            log.warning("lease connection: a probe is still stuck; leaving the socket to exit")
            return
    with contextlib.suppress(psycopg.Error):
        conn.close()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
