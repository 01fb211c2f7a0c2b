"""One orchestrator process of the lease tests: holds a job's lease the way a run does.

    python lease_worker.py URL ORCHESTRATOR JOB

Opens the Store and PgLeases (with the short test settings below), takes the job's lease,
records stale runs interrupted, starts a `backup` run and prints `held RUN_ID`, then waits.
When the watchdog reports the lease lost it does what `actions.jobrun` does: stop the run
(there is no restic here to kill), try to record it (a row no longer `running` is not closed
again), print `lost: REASON` and exit 1. A lease held by another orchestrator prints the
message and exits 75.
"""

from __future__ import annotations

import os
import sys
import threading

from backupctl.actions.jobrun import interrupted_error
from backupctl.errors import BackupctlError, LockHeld
from backupctl.state import pgconn, queries
from backupctl.state.db import Store
from backupctl.state.leases import Lease, LeaseSettings, PgLeases

# Short on purpose (tests only): the server frees a silent client's lease after ~6 s, the
# watchdog notices within 2 s.
TEST_SETTINGS = LeaseSettings(
    keepalive=pgconn.Keepalive(idle=2, interval=1, count=3, user_timeout_ms=6000,
                               connect_timeout=3),
    probe_interval=0.5, probe_timeout=1.5)


def main(url: str, orchestrator: str, job: str) -> int:
    store = Store(url, orchestrator=orchestrator)
    lost = threading.Event()

    def on_lost(lease: Lease) -> None:
        lost.set()

    leases = PgLeases(url, orchestrator, settings=TEST_SETTINGS, on_lost=on_lost)
    try:
        with leases.hold(job, kind="backup") as lease:
            with store.transaction() as conn:
                queries.interrupt_running(
                    conn, job, orchestrator=None, finished_at=store.now(),
                    error=lambda dead: interrupted_error(dead, by=orchestrator))
                run_id = queries.start_run(conn, job=job, kind="backup", repository="primary",
                                           operator="scheduler", orchestrator=orchestrator,
                                           pid=os.getpid(), started_at=store.now())
            print(f"held {run_id}", flush=True)
            lost.wait()
            print(f"lost: {lease.lost_reason}", flush=True)
            try:
                with store.transaction() as conn:
                    closed = queries.finish_run(conn, run_id, status="interrupted",
                                                exit_code=1, finished_at=store.now(),
                                                details=None, error=lease.lost_reason)
                print(f"finish: {'recorded' if closed else 'already closed elsewhere'}",
                      flush=True)
            except BackupctlError as exc:
                print(f"finish: {exc}", flush=True)
            return 1
    except LockHeld as exc:
        print(exc, flush=True)
        return int(exc.status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
