"""Benchmark: one exporter scrape (read state + build the exposition) for 100 jobs.

Target (issue #6): < 50 ms per scrape with a year of history. Run:
    .venv/bin/python bench/metrics.py [--jobs 100] [--days 365] [--scrapes 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backupctl.clock import iso
from backupctl.config.schema import Job
from backupctl.metrics import Source, exposition
from backupctl.state.db import Store
from backupctl.state.schema import generations, runs
from backupctl.state.view import StateReader

COPIES = [{"name": "usb", "kind": "offline", "url": "/mnt/usb", "password_file": "/pw",
           "max_age": "7d"},
          {"name": "worm", "kind": "immutable", "url": "rest:http://vault/",
           "password_file": "/pw", "max_age": "2d"}]


def job(name: str) -> Job:
    return Job.model_validate({
        "job": name, "description": f"サーバ {name}", "host": {"address": "local"},
        "source": {"paths": ["/srv"]}, "repository": {"url": f"/r/{name}", "password_file": "/pw"},
        "generations": {"last": 7, "daily": 14}, "copies": COPIES, "verify": {"rto": "2h"},
        "schedule": {"backup": "daily", "verify": "weekly"}})


def _run(name: str, kind: str, repo: str, when: datetime, status: str,
         details: dict[str, Any]) -> dict[str, Any]:
    return {"job": name, "kind": kind, "repository": repo, "status": status,
            "started_at": iso(when), "finished_at": iso(when + timedelta(minutes=5)),
            "details": json.dumps(details, ensure_ascii=False), "orchestrator": "bench",
            "pid": 1, "operator": "scheduler", "restore_ms": details.get("restore_ms")}


def populate(store: Store, names: list[str], days: int) -> int:
    start = datetime(2025, 1, 1, 2, tzinfo=UTC)
    total = 0
    for name in names:
        rows: list[dict[str, Any]] = []
        for day in range(days):
            when = start + timedelta(days=day)
            rows.append(_run(name, "backup", "primary", when, "success" if day % 30 else "failed",
                             {"bytes_added": 10_000_000 + day, "duration_ms": 120_500,
                              "generations": 14, "files_new": 10, "files_changed": 50,
                              "manifest": {"files": 500, "coverage": "0.050000"}}))
            for copy in ("usb", "worm"):
                rows.append(_run(name, "copy", copy, when + timedelta(hours=1), "success", {}))
            rows.append(_run(name, "probe", "worm", when + timedelta(hours=1, minutes=10),
                             "success", {"refused": True}))
            if day % 7 == 0:
                full = day % 14 == 0
                rows.append(_run(name, "verify", "primary", when + timedelta(hours=2), "success",
                                 {"files_checked": 500, "mismatches": [], "mode":
                                  "full" if full else "quick",
                                  "restore_ms": 900_000 if full else None,
                                  "rto_seconds": 7200, "coverage": "0.050000"}))
        with store.transaction() as conn:
            conn.execute(runs.insert(), rows)
            conn.execute(generations.insert(), [
                {"job": name, "repository": repo, "count": 14, "expected": 14,
                 "observed_at": iso(start)} for repo in ("primary", "usb", "worm")])
        total += len(rows)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'state.db'}"
        names = [f"server-{i:03d}" for i in range(args.jobs)]
        t0 = time.perf_counter()
        rows = populate(Store(url), names, args.days)
        print(f"state: {args.jobs} jobs, {rows} runs ({time.perf_counter() - t0:.1f}s to build)")
        jobs = [job(n) for n in names]
        source = Source(jobs=lambda: jobs, reader=StateReader(url), restic_version="0.14.0")
        timings, cpu = [], []
        size = 0
        for _ in range(args.scrapes):
            t, c = time.perf_counter(), time.process_time()
            text, ok = exposition(source)
            timings.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            assert ok
            size = len(text)
        timings.sort()
        p95 = timings[int(len(timings) * 0.95) - 1]
        print(f"scrape: median {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, "
              f"max {timings[-1]:.1f} ms, CPU median {statistics.median(cpu):.1f} ms, "
              f"{size} bytes (target < 50 ms)")


if __name__ == "__main__":
    main()
