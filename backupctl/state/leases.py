"""Job leases: one run of a job at a time, across every orchestrator sharing the state.

A run holds its job's lease for its whole duration; a second holder gets `LeaseHeld` (exit
75) naming who runs the job. Two implementations behind one interface (`JobLocks`):

- `FileLocks(state_dir)` (state/locks.py): the per-job `flock` (SQLite, one orchestrator).
- `PgLeases(database_url, orchestrator)`: several orchestrators on one PostgreSQL. Each
  held lease is a session-level advisory lock on a connection of its own (never a pooled
  one: a session lock survives commit and being returned to a pool, COMPONENTS.md), plus a
  row in `leases` saying who holds it and since when. PostgreSQL releases the lock when the
  session ends: at once when the holder dies (its socket closes), and within
  `Keepalive.dead_after()` (~30 s) when the network to it is cut silently, since the
  session tells the server to probe its client. A watchdog thread asks the server every few
  seconds whether the lock is still ours; when the answer is no or does not come in time it
  marks the lease lost (`Lease.lost`, `on_lost`) *before* the server can have freed it, so
  the run stops (the caller kills restic and exits 1) before another orchestrator takes over.

Coordination goes through PostgreSQL only: no second service, no consensus of our own.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Connection, select

from backupctl.clock import Clock, iso, system_clock
from backupctl.errors import BackupctlError
from backupctl.state import pgconn
from backupctl.state.db import StateError, safe_url
from backupctl.state.locks import LeaseHeld
from backupctl.state.schema import leases as leases_table

log = logging.getLogger(__name__)


@dataclass
class Lease:
    """A held job lease. `lost` is set (from the watchdog thread) when it is no longer ours."""

    job: str
    kind: str
    orchestrator: str
    since: str
    lost: threading.Event = field(default_factory=threading.Event, repr=False)
    lost_reason: str | None = None

    def check(self) -> None:
        """Raise LeaseLost if the lease was lost (call between the steps of a run)."""
        if self.lost.is_set():
            raise LeaseLost(f"{self.job}: {self.lost_reason or 'lease lost'}; the run was "
                            "stopped so that another orchestrator can take the job over")


class LeaseLost(BackupctlError):
    """The connection holding the lease is gone: stop the run (exit 1)."""


# -- PgLeases: several orchestrators, PostgreSQL -------------------------------------------

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


_HIGH_BIT = 1 << 62


def lock_key(job: str) -> int:
    """The advisory lock key (bigint) of a job's lease.

    62 bits of SHA-256 (no two of a site's jobs collide in practice) with bit 62 set, so the
    high half is never 0 like the evidence chain's lock key (state/db.py) and the two can
    never be the same lock.
    """
    digest = hashlib.sha256(b"backupctl job lease\0" + job.encode()).digest()
    return (int.from_bytes(digest[:8], "big") & (_HIGH_BIT - 1)) | _HIGH_BIT


def _lock_ids(key: int) -> tuple[int, int]:
    """(classid, objid) of a bigint advisory lock key as pg_locks shows it (objsubid 1)."""
    return key >> 32, key & 0xFFFFFFFF


_HELD = ("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
         "AND pid = pg_backend_pid() AND classid = %s::bigint::oid "
         "AND objid = %s::bigint::oid AND objsubid = 1)")
_HOLDER = ("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
           "AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1")
_UPSERT = ("INSERT INTO leases (job, kind, orchestrator, pid, backend_pid, since) "
           "VALUES (%s, %s, %s, %s, pg_backend_pid(), %s) ON CONFLICT (job) DO UPDATE SET "
           "kind = EXCLUDED.kind, orchestrator = EXCLUDED.orchestrator, pid = EXCLUDED.pid, "
           "backend_pid = EXCLUDED.backend_pid, since = EXCLUDED.since")


class PgLeases:
    """Job leases in PostgreSQL (see the module docstring).

    The state database must have been opened once with this version (`Store`), which creates
    the `leases` table. `on_lost(lease)` is called from the watchdog thread when a held lease
    is lost; `Lease.lost` is set in any case.
    """

    global_scope: bool = True

    def __init__(self, database_url: str, orchestrator: str, *,
                 settings: LeaseSettings | None = None,
                 on_lost: Callable[[Lease], None] | None = None,
                 clock: Clock = system_clock,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not pgconn.is_postgresql(database_url):
            raise ValueError(f"PgLeases needs a PostgreSQL database_url, not "
                             f"{safe_url(database_url)}")
        self.url = database_url
        self.orchestrator = orchestrator
        # database_url's keepalive values (if any) set how fast a cut is noticed
        self.settings = settings or LeaseSettings.following(pgconn.keepalive_of(database_url))
        self.on_lost = on_lost
        self.clock = clock
        self.sleep = sleep

    def _connect(self, job: str) -> psycopg.Connection[Any]:
        # Our own session settings: the lease connection is idle between probes, and an
        # idle-session limit set by the DBA must not end it (and with it the lease).
        args = pgconn.connect_args(
            self.url, self.settings.keepalive,
            extra_options="-c idle_session_timeout=0 "
                          "-c idle_in_transaction_session_timeout=0 -c statement_timeout=0")
        try:
            conninfo = make_conninfo(pgconn.libpq_url(self.url), **args,
                                     application_name=f"backupctl lease {job}"[:63])
            return psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StateError(f"{job}: cannot reach the state database {safe_url(self.url)} "
                             f"to take the job's lease: {_first_line(exc)}; nothing was run")\
                from None

    @contextlib.contextmanager
    def hold(self, job: str, *, kind: str) -> Iterator[Lease]:
        conn = self._connect(job)
        watchdog: _Watchdog | None = None
        try:
            key = lock_key(job)
            lease = self._acquire(conn, job, kind, key)
            watchdog = _Watchdog(conn, lease, _lock_ids(key), self.settings, self.on_lost)
            watchdog.start()
            try:
                yield lease
            finally:
                watchdog.stop()
                if not lease.lost.is_set():
                    self._release(conn, job, key)
        finally:
            _close(conn, watchdog)

    def _acquire(self, conn: psycopg.Connection[Any], job: str, kind: str, key: int) -> Lease:
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s::bigint)", (key,)).fetchone()
            if row is None or not row[0]:
                raise self._held(conn, job, key)
            left = conn.execute("SELECT orchestrator FROM leases WHERE job = %s "
                                "AND backend_pid <> pg_backend_pid()", (job,)).fetchone()
            since = iso(self.clock())
            conn.execute(_UPSERT, (job, kind, self.orchestrator, os.getpid(), since))
        except psycopg.Error as exc:
            raise StateError(f"{job}: taking the job's lease in {safe_url(self.url)} failed: "
                             f"{_first_line(exc)}; nothing was run") from None
        if left is not None:
            self._outwait(job, str(left[0]))
        log.debug("%s: lease taken by %s for %s", job, self.orchestrator, kind)
        return Lease(job=job, kind=kind, orchestrator=self.orchestrator, since=since)

    def _outwait(self, job: str, previous: str) -> None:
        """The previous holder's row is still there: its session ended without releasing
        (killed, terminated by a DBA, a failover). If its process lives on, its watchdog
        notices within `probe_interval + probe_timeout` and stops the run; start nothing
        before then (measured: a takeover right after `pg_terminate_backend` began 1.3 s
        before the old holder noticed). The lock is ours meanwhile: nobody else can start."""
        wait = self.settings.probe_interval + self.settings.probe_timeout
        log.info("%s: the lease of %s ended without a release; waiting %g s for it to "
                 "notice before taking the job over", job, previous, wait)
        self.sleep(wait)

    def _held(self, conn: psycopg.Connection[Any], job: str, key: int) -> LeaseHeld:
        holders = {r[0] for r in conn.execute(_HOLDER, _lock_ids(key))}
        row = conn.execute("SELECT orchestrator, kind, pid, since, backend_pid FROM leases "
                           "WHERE job = %s", (job,)).fetchone()
        if row is None or row[4] not in holders:  # the holder has not written its row yet
            return LeaseHeld(f"{job}: running on another orchestrator (it is taking the "
                             "lease right now); nothing was run",
                             job=job, orchestrator=None, since=None)
        orchestrator, kind, pid, since = row[0], row[1], row[2], row[3]
        return LeaseHeld(f"{job}: running on {orchestrator} since {since} ({kind}, pid {pid}); "
                         "nothing was run", job=job, orchestrator=orchestrator, since=since)

    def _release(self, conn: psycopg.Connection[Any], job: str, key: int) -> None:
        """Delete our row, then unlock. A failure here is harmless: closing the session
        releases the lock anyway, and a leftover row is overwritten by the next holder."""
        try:
            conn.execute("DELETE FROM leases WHERE job = %s AND backend_pid = pg_backend_pid()",
                         (job,))
            conn.execute("SELECT pg_advisory_unlock(%s::bigint)", (key,))
        except psycopg.Error as exc:
            log.warning("%s: releasing the lease: %s (the session end releases it)", job,
                        _first_line(exc))


class _Watchdog:
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
                answer["error"] = _first_line(exc)

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


def _close(conn: psycopg.Connection[Any], watchdog: _Watchdog | None) -> None:
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


# -- choosing and reading ------------------------------------------------------------------

@dataclass(frozen=True)
class HeldLease:
    """A row of `leases`, and whether its holder's session still holds the lock."""

    job: str
    kind: str
    orchestrator: str
    pid: int
    since: str
    live: bool


def current_leases(conn: Connection) -> list[HeldLease]:
    """Every lease row, live ones (a run in progress) and stale ones (a holder that died
    since, until the next holder overwrites the row). Empty on SQLite (flock has no rows)."""
    if conn.dialect.name != "postgresql":
        return []
    held = {((int(r.classid) << 32) | int(r.objid), int(r.pid)) for r in conn.exec_driver_sql(
        "SELECT classid, objid, pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND objsubid = 1")}
    return [HeldLease(job=r.job, kind=r.kind, orchestrator=r.orchestrator, pid=r.pid,
                      since=r.since, live=(lock_key(r.job), r.backend_pid) in held)
            for r in conn.execute(select(leases_table).order_by(leases_table.c.job))]
