"""Append N evidence records through the real Store (one process of the concurrency test).

Prints "ready" once imported and connected, then waits for a line on stdin, so that both
writers start appending at the same moment (start-up alone takes longer than 200 appends).
A short pause after each append stands for the work a real run does between two records:
without it SQLite's busy handler (which polls with growing sleeps) can starve the other
writer until this one is done, and the test would prove nothing about concurrent appends."""

from __future__ import annotations

import sys
import time

from backupctl.state.db import Store
from tests import runs


def main(url: str, job: str, count: int) -> None:
    store = Store(url)
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        runs.record(store, job=job, snapshot_id=f"{i:08x}", evidence_details={"i": i})
        time.sleep(0.005)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
