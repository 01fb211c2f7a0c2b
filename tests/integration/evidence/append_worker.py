"""Append N evidence records through the real Store (one process of the concurrency test)."""

from __future__ import annotations

import sys

from backupctl.state.db import Store


def main(url: str, job: str, count: int) -> None:
    store = Store(url)
    for i in range(count):
        run_id = store.start_run(job=job, kind="backup")
        store.finish_run(run_id, status="success", exit_code=0, snapshot_id=f"{i:08x}",
                         evidence={"host": "local", "details": {"i": i},
                                   "backupctl_version": "test", "restic_version": "test"})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
