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
This module is the protocol (take, refuse, wait out a holder that vanished, release);
`state/watchdog.py` the thread that notices a lost lease; `state/lease_view.py` who holds
what, for `status` (without importing psycopg).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from backupctl.clock import Clock, iso, system_clock
from backupctl.state import pgconn
from backupctl.state.db import StateError, safe_url
from backupctl.state.lease_view import HeldLease as HeldLease
from backupctl.state.lease_view import current_leases as current_leases
from backupctl.state.lease_view import lock_key as lock_key
from backupctl.state.locks import LeaseHeld
from backupctl.state.watchdog import Lease as Lease
from backupctl.state.watchdog import LeaseLost as LeaseLost
from backupctl.state.watchdog import LeaseSettings as LeaseSettings
from backupctl.state.watchdog import Watchdog, close, first_line

log = logging.getLogger(__name__)


def _lock_ids(key: int) -> tuple[int, int]:
    """(classid, objid) of a bigint advisory lock key as pg_locks shows it (objsubid 1)."""
    return key >> 32, key & 0xFFFFFFFF


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
                             f"to take the job's lease: {first_line(exc)}; nothing was run")\
                from None

    @contextlib.contextmanager
    def hold(self, job: str, *, kind: str) -> Iterator[Lease]:
        conn = self._connect(job)
        watchdog: Watchdog | None = None
        try:
            key = lock_key(job)
            lease = self._acquire(conn, job, kind, key)
            watchdog = Watchdog(conn, lease, _lock_ids(key), self.settings, self.on_lost)
            watchdog.start()
            try:
                yield lease
            finally:
                watchdog.stop()
                if not lease.lost.is_set():
                    self._release(conn, job, key)
        finally:
            close(conn, watchdog)

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
                             f"{first_line(exc)}; nothing was run") from None
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
                        first_line(exc))


