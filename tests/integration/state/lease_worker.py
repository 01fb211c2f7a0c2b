"""One orchestrator process of the lease tests: holds a job's lease the way a run does.

    python lease_worker.py URL ORCHESTRATOR JOB

Opens the Store and PgLeases (with the short test settings below), takes the job's lease,
takes over stale runs, starts a `backup` run and prints `held RUN_ID`, then waits. When the
watchdog reports the lease lost it does what the core will do: stop the run (there is no
restic here to kill), try to record the run failed (the guarded finish), print `lost: REASON`
and exit 1. A lease held by another orchestrator prints the message and exits 75.
"""

from __future__ import annotations

import sys
import threading

from backupctl.errors import BackupctlError, LockHeld
from backupctl.state import pgconn
from backupctl.state.db import Store
from backupctl.state.leases import Lease, LeaseSettings, PgLeases
from backupctl.state.takeover import guarded_finish, take_over

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
            take_over(store, job, any_orchestrator=leases.global_scope)
            run_id = store.start_run(job=job, kind="backup")
            print(f"held {run_id}", flush=True)
            lost.wait()
            print(f"lost: {lease.lost_reason}", flush=True)
            try:
                with store.transaction() as conn:
                    guarded_finish(conn, run_id, {"status": "failed", "exit_code": 1,
                                                  "error": lease.lost_reason})
            except BackupctlError as exc:
                print(f"finish: {exc}", flush=True)
            return 1
    except LockHeld as exc:
        print(exc, flush=True)
        return int(exc.status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
