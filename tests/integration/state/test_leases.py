"""Job leases on a real PostgreSQL between real orchestrator processes (issue #15): a second
orchestrator is refused naming the first, a killed holder's lease is free at once and its run
is taken over, and a holder whose network is cut silently loses its lease on the server in
bounded time while its own watchdog stops it first."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from backupctl.actions.jobrun import interrupted_error
from backupctl.state import queries
from backupctl.state.db import Store
from backupctl.state.leases import (
    Lease,
    LeaseLost,
    PgLeases,
    current_leases,
    lock_key,
)
from backupctl.state.locks import LeaseHeld
from backupctl.state.schema import runs
from backupctl.status import ExitStatus
from tests.conftest import Postgres, silent_cut
from tests.integration.state.lease_worker import TEST_SETTINGS

WORKER = Path(__file__).with_name("lease_worker.py")
JOB = "emr-db"
CUT_ADDRESS = "127.0.0.2"  # the cut orchestrator's way to the server; the others use 127.0.0.1


class Worker:
    """A lease_worker.py process; its stdout lines are collected as they come."""

    def __init__(self, url: str, orchestrator: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(WORKER), url, orchestrator, JOB],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.strip())
                self.changed.notify_all()

    def wait_line(self, prefix: str, timeout: float = 60) -> str:
        with self.changed:
            found = self.changed.wait_for(
                lambda: next((x for x in self.lines if x.startswith(prefix)), None)
                or self.proc.poll() is not None, timeout)
            line = next((x for x in self.lines if x.startswith(prefix)), None)
        assert line is not None, (found, self.lines, self.stderr())
        return line

    def seen(self, prefix: str) -> bool:
        with self.changed:
            return any(x.startswith(prefix) for x in self.lines)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def url(postgres: Postgres) -> str:
    url = postgres.empty_url()
    Store(url)  # creates the tables (leases among them) before any worker races for them
    return url


def _rows(url: str) -> list[tuple[str, str, str, str | None]]:
    with Store(url).read() as conn:
        return [(r.job, r.orchestrator, r.status, r.error)
                for r in conn.execute(select(runs).order_by(runs.c.id))]


def _take_over(store: Store) -> list[queries.RunRow]:
    """What `jobrun.recover` does under a global lease (its evidence left out here)."""
    with store.transaction() as conn:
        return queries.interrupt_running(
            conn, JOB, orchestrator=None, finished_at=store.now(),
            error=lambda dead: interrupted_error(dead, by=store.orchestrator))


def _acquire_when_free(leases: PgLeases, *, deadline: float = 90) -> contextlib.ExitStack:
    """Hold the job's lease as soon as the server has freed it (bounded wait)."""
    stop = time.monotonic() + deadline
    while True:
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(leases.hold(JOB, kind="backup"))
            return stack
        except LeaseHeld:
            stack.close()
            if time.monotonic() > stop:
                raise
            time.sleep(0.2)


def test_a_second_orchestrator_is_refused_with_75_naming_the_holder(
        url: str, workers: list[Worker]) -> None:
    first = Worker(url, "backup01")
    workers.append(first)
    first.wait_line("held")

    with pytest.raises(LeaseHeld) as info, \
            PgLeases(url, "backup02", settings=TEST_SETTINGS).hold(JOB, kind="verify"):
        pass
    assert info.value.status is ExitStatus.LOCKED
    assert info.value.orchestrator == "backup01"
    assert str(info.value).startswith(f"{JOB}: running on backup01 since ")
    assert "(backup, pid " in str(info.value) and "nothing was run" in str(info.value)

    second = Worker(url, "backup03")  # and as a process of its own
    workers.append(second)
    second.proc.wait(timeout=60)
    assert second.proc.returncode == 75
    assert second.lines and second.lines[0].startswith(f"{JOB}: running on backup01 since ")

    with PgLeases(url, "backup02", settings=TEST_SETTINGS).hold("other-job", kind="backup"):
        pass  # other jobs are independent
    with Store(url).read() as conn:
        [live] = [lease for lease in current_leases(conn) if lease.live]
    assert (live.job, live.orchestrator, live.kind) == (JOB, "backup01", "backup")


def test_a_killed_holder_frees_the_lease_at_once_and_its_run_is_taken_over(
        url: str, workers: list[Worker]) -> None:
    holder = Worker(url, "backup01")
    workers.append(holder)
    run_id = int(holder.wait_line("held").split()[1])

    holder.proc.kill()  # SIGKILL: no cleanup of any kind
    holder.proc.wait(timeout=30)

    store = Store(url, orchestrator="backup02")
    leases = PgLeases(url, "backup02", settings=TEST_SETTINGS)
    # The socket closes with the process; the backend ends right after (no keepalive wait).
    with _acquire_when_free(leases, deadline=10):
        [stale] = _take_over(store)
        with store.read() as conn:
            [lease] = current_leases(conn)
        assert (lease.orchestrator, lease.live) == ("backup02", True)
        assert _take_over(store) == []  # once only

    assert (stale.id, stale.orchestrator) == (run_id, "backup01")
    [(job, orchestrator, status, error)] = _rows(url)
    assert (job, orchestrator, status) == (JOB, "backup01", "interrupted")
    assert error == ("interrupted: orchestrator backup01 stopped (lease lost) before the run "
                     "finished; recorded by backup02")
    with store.read() as conn:
        assert current_leases(conn) == []  # released: the row went with the lock


@pytest.mark.slow
def test_a_silent_network_cut_frees_the_lease_on_the_server_and_stops_the_holder(
        postgres: Postgres, url: str, workers: list[Worker]) -> None:
    """Every packet between the holder and the server dropped, nothing reset: the holder's
    watchdog stops it, the server's keepalives end its session and free the lease for
    another orchestrator, whose takeover records the run interrupted, exactly once."""
    holder = Worker(postgres.url_via(CUT_ADDRESS), "backup01")
    workers.append(holder)
    run_id = int(holder.wait_line("held").split()[1])
    with silent_cut(CUT_ADDRESS, postgres.port):
        store = Store(url, orchestrator="backup02")
        leases = PgLeases(url, "backup02", settings=TEST_SETTINGS)
        with _acquire_when_free(leases):
            # The cut-off run was told to stop before its lease could be anyone else's.
            assert holder.seen("lost: lease lost: "), holder.lines
            [stale] = _take_over(store)
        # Its own attempt to record the run fails in bounded time (keepalives,
        # connect_timeout) instead of hanging: it exits 1.
        holder.proc.wait(timeout=120)
    assert holder.proc.returncode == 1
    assert holder.seen("finish: "), holder.lines
    assert (stale.id, stale.orchestrator) == (run_id, "backup01")
    [(_, _, status, error)] = _rows(url)
    assert status == "interrupted" and "orchestrator backup01 stopped" in (error or "")


def test_a_session_ended_by_the_server_is_a_lost_lease(url: str) -> None:
    """A failover (Patroni) or a DBA ends every session: the run must stop, not go on
    believing it holds the job."""
    lost: list[Lease] = []
    leases = PgLeases(url, "backup01", settings=TEST_SETTINGS, on_lost=lost.append)
    with leases.hold(JOB, kind="backup") as lease:
        with Store(url).read() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = :name "
                              "AND datname = current_database()"),
                         {"name": f"backupctl lease {JOB}"})
        assert lease.lost.wait(60), "the watchdog never noticed"
        # the watchdog sets `lost` and then calls on_lost: give the callback its moment
        deadline = time.monotonic() + 30
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lost == [lease]
        assert lease.lost_reason is not None and lease.lost_reason.startswith(
            "lease lost: the connection to the state database was lost")
        with pytest.raises(LeaseLost, match=f"^{JOB}: lease lost: "):
            lease.check()
    # Leaving the context after a loss raises nothing and the job can be taken again.
    with PgLeases(url, "backup02", settings=TEST_SETTINGS).hold(JOB, kind="backup") as again:
        again.check()


def test_a_takeover_after_a_failover_waits_until_the_old_holder_has_stopped(
        url: str, workers: list[Worker]) -> None:
    """A DBA or a Patroni failover ends the holder's session while its process lives on: the
    lock is free at once, but the old run only stops when its watchdog notices. The new
    holder waits out the watchdog's bound before anything runs (without the wait it started
    ~1.3 s before the old one noticed)."""
    holder = Worker(url, "backup01")
    workers.append(holder)
    holder.wait_line("held")
    with Store(url).read() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = :name AND datname = current_database()"),
                     {"name": f"backupctl lease {JOB}"})
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    leases = PgLeases(url, "backup02", settings=TEST_SETTINGS, sleep=sleep)
    with _acquire_when_free(leases, deadline=10):
        assert holder.seen("lost: lease lost: "), holder.lines
    assert waits == [TEST_SETTINGS.probe_interval + TEST_SETTINGS.probe_timeout]

    waits.clear()  # a lease released normally leaves no row: the next holder starts at once
    with leases.hold(JOB, kind="backup"):
        pass
    assert waits == []


def test_lease_keys_are_distinct_from_the_chain_lock_and_stable() -> None:
    from backupctl.state.db import _PG_CHAIN_LOCK

    keys = {lock_key(f"job-{i}") for i in range(1000)}
    assert len(keys) == 1000
    assert all(0 < k < 2**63 and k >> 32 != _PG_CHAIN_LOCK >> 32 for k in keys)
    assert lock_key(JOB) == lock_key(JOB)
