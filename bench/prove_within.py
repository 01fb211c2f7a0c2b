"""Benchmark: the daily cost of `verify.prove_within: 30d` on a job of many small files.

A synthetic tree of --files small files (1 000 per directory) is backed up with real
restic on this machine, then each simulated day runs a backup (source hashing of the
day's share) and a quick verify (restore and hash of the day's due files), with
--churn files changed per day. Measured per day: backup time and its source hashing,
the quick verify, the state database's growth; after the days, `status` and one metrics
scrape (the proof metrics read from a table of --files rows), and the bench process's peak
memory (backups and verifies run in it: the listing and the proof rows of every file).
Goals (issue #27): quick verify < 2 min and scrape < 1 s at 1 000 000 files. Run:
    .venv/bin/python bench/prove_within.py [--files 1000000] [--days 3] [--churn 100]
      [--dir /var/tmp]   (the tree, repository and state go there; removed afterwards)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backupctl.actions import backup as backup_action
from backupctl.actions import status as status_action
from backupctl.actions import verify as verify_action
from backupctl.actions.context import Context
from backupctl.config.validate import load_config
from backupctl.metrics import Source, exposition
from backupctl.state.db import Store
from backupctl.state.view import StateReader
from backupctl.status import ExitStatus
from backupctl.verify import manifest

PER_DIR = 1000
_NOW = [datetime(2026, 12, 1, 2, tzinfo=UTC)]  # the simulated clock of every run
PASSWORD = "bench-prove-within"


def make_tree(root: Path, files: int) -> None:
    """`files` files of 64–575 bytes, 1 000 per directory."""
    for i in range(files):
        directory = root / f"d{i // PER_DIR:05d}"
        if i % PER_DIR == 0:
            directory.mkdir(parents=True)
        (directory / f"f{i:07d}.txt").write_bytes(os.urandom(64 + i % 512))


def setup(root: Path, files: int, window: str) -> Path:
    """Tree, repository, password, config and job file; the config's path."""
    src, repo = root / "src", root / "repo"
    pw = root / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    subprocess.run(["restic", "init", "--repo", str(repo), "--password-file", str(pw)],
                   check=True, capture_output=True)
    for name in ("jobs", "state", "scratch"):
        (root / name).mkdir(mode=0o700)
    (root / "kh").touch()
    (root / "backupctl.yaml").write_text(
        f"jobs_dir: {root / 'jobs'}\nstate_dir: {root / 'state'}\n"
        f"scratch_dir: {root / 'scratch'}\nknown_hosts: {root / 'kh'}\n"
        "command_timeout: 2h\n")
    (root / "jobs" / "bench.yaml").write_text(
        f"job: bench\nhost: {{address: local}}\nsource: {{paths: ['{src}']}}\n"
        f"repository: {{url: '{repo}', password_file: '{pw}'}}\ngenerations: {{last: 3}}\n"
        f"verify: {{sample: 1, prove_within: {window}}}\n"
        "schedule: {backup: '*-*-* 02:00:00', verify: '*-*-* 04:00:00'}\n")
    started = time.perf_counter()
    make_tree(src, files)
    print(f"tree: {files} files in {time.perf_counter() - started:.0f}s", flush=True)
    return root / "backupctl.yaml"


@contextmanager
def timed_hashing(spent: list[float]) -> Iterator[None]:
    """Time the source manifest's hashing (manifest.hash_on_source) inside a backup."""
    original: Callable[..., Any] = manifest.hash_on_source

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    manifest.hash_on_source = wrapper
    try:
        yield
    finally:
        manifest.hash_on_source = original


def churn(src: Path, files: int, count: int, day: int) -> None:
    for n in range(count):
        i = (day * 7919 + n * 104_729) % files
        path = src / f"d{i // PER_DIR:05d}" / f"f{i:07d}.txt"
        path.write_bytes(os.urandom(64 + (i + day) % 512))


def day(ctx: Context, config_path: Path, *, number: int) -> dict[str, Any]:
    job = load_config(config_path).job("bench")
    db = Path(str(ctx.store.url).removeprefix("sqlite:///"))
    before = db.stat().st_size if db.exists() else 0
    hashing: list[float] = []
    started = time.perf_counter()
    with timed_hashing(hashing):
        made = backup_action.backup(ctx, job)
    backup_s = time.perf_counter() - started
    assert made.status is ExitStatus.OK, made.error
    sampled = made.details.manifest.sampled if made.details.manifest else 0
    _NOW[0] += timedelta(hours=2)  # the verify runs two hours after the backup
    started = time.perf_counter()
    tested = verify_action.verify(ctx, job)
    verify_s = time.perf_counter() - started
    assert tested.status is ExitStatus.OK, tested.error
    _NOW[0] += timedelta(hours=22)
    return {"day": number, "backup_s": round(backup_s, 1), "hashed": sampled,
            "hashing_s": round(sum(hashing), 1), "verify_s": round(verify_s, 1),
            "verified": tested.details.files_checked,
            "db_growth_bytes": db.stat().st_size - before}


def reads(ctx: Context, config_path: Path, scrapes: int) -> dict[str, Any]:
    """`status` of the job and metrics scrapes with the proofs the days left."""
    config = load_config(config_path)
    job = config.job("bench")
    started = time.perf_counter()
    standing = status_action.job_status(ctx, job).proof
    status_ms = (time.perf_counter() - started) * 1000
    source = Source(jobs=lambda: [job], reader=StateReader(ctx.store.url),
                    restic_version="0.14.0", clock=lambda: _NOW[0])
    timings = []
    for _ in range(scrapes):
        started = time.perf_counter()
        text, ok = exposition(source)
        timings.append((time.perf_counter() - started) * 1000)
        assert ok, text
    return {"status_ms": round(status_ms), "scrape_median_ms": round(statistics.median(timings)),
            "scrape_max_ms": round(max(timings)), "standing": standing,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--churn", type=int, default=100, help="files changed per day")
    parser.add_argument("--window", default="30d")
    parser.add_argument("--scrapes", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-prove-", dir=args.dir))
    try:
        config_path = setup(root, args.files, args.window)
        config = load_config(config_path)
        store = Store(config.settings.effective_database_url, clock=lambda: _NOW[0])
        ctx = Context(config=config, store=store, clock=lambda: _NOW[0])
        results = []
        for number in range(args.days + 1):  # day 0: the first backup of the whole tree
            if number:
                churn(root / "src", args.files, args.churn, number)
            results.append(day(ctx, config_path, number=number))
            print(json.dumps(results[-1]), flush=True)
        db = root / "state" / "state.db"
        print(json.dumps({"files": args.files, "window": args.window,
                          "state_db_bytes": db.stat().st_size,
                          **reads(ctx, config_path, args.scrapes)}), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
