"""Benchmark: rendering the status page (`/` of the exporter) for 100 jobs and a year of runs.

Target (issue #28): < 200 ms per page. The state is bench/metrics.py's (every job backed up
daily and copied twice, probed, restore-tested weekly, a failed backup every 30th day), so
the page and a scrape are measured on the same database. Each request goes through the
WSGI application as the exporter serves it (read snapshot, verdicts, cards, 30-day strips,
Jinja2); the first request also asks systemd-analyze for the schedules (kept afterwards) and
is reported apart. Run:
    .venv/bin/python -m bench.status_page [--jobs 100] [--days 365] [--pages 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backupctl.config.schema import GlobalConfig
from backupctl.config.validate import Config
from backupctl.state.db import Store
from backupctl.state.view import StateReader
from backupctl.web.page import StatusPage
from bench.metrics import job, populate


def request(app: StatusPage, lang: str) -> tuple[float, float, int]:
    """(wall ms, CPU ms, bytes) of one GET /."""
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    t, c = time.perf_counter(), time.process_time()
    body = b"".join(app({"PATH_INFO": "/", "REQUEST_METHOD": "GET",
                         "QUERY_STRING": f"lang={lang}"}, start_response))
    wall, cpu = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
    assert seen["status"] == "200 OK", seen
    return wall, cpu, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--pages", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root / 'state.db'}"
        names = [f"server-{i:03d}" for i in range(args.jobs)]
        t0 = time.perf_counter()
        rows = populate(Store(url), names, args.days)
        print(f"state: {args.jobs} jobs, {rows} runs ({time.perf_counter() - t0:.1f}s to build)")
        jobs = [job(n) for n in names]
        config = Config(path=root / "backupctl.yaml", settings=GlobalConfig.model_validate({
            "jobs_dir": tmp, "state_dir": tmp, "scratch_dir": tmp, "known_hosts": tmp,
            "timezone": "Asia/Tokyo"}))
        now = datetime(2025, 1, 1, 12, tzinfo=UTC) + timedelta(days=args.days)
        app = StatusPage(config=lambda: config, jobs=lambda: jobs, reader=StateReader(url),
                         clock=lambda: now)
        cold = request(app, "ja")
        print(f"first page (systemd-analyze for the schedules): {cold[0]:.0f} ms")
        walls, cpus, size = [], [], 0
        for i in range(args.pages):
            wall, cpu, size = request(app, "ja" if i % 2 else "en")
            walls.append(wall)
            cpus.append(cpu)
        walls.sort()
        p95 = walls[max(int(len(walls) * 0.95) - 1, 0)]
        print(f"page: median {statistics.median(walls):.1f} ms, p95 {p95:.1f} ms, "
              f"max {walls[-1]:.1f} ms, CPU median {statistics.median(cpus):.1f} ms, "
              f"{size} bytes (target < 200 ms)")


if __name__ == "__main__":
    main()
