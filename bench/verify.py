"""Benchmark: backupctl verify (full / quick) against the plain tools, and peak RSS.

Builds a data set of random bytes, shaped like a hospital's (`--shape mixed`, the default:
many small files of 2 KB–1 MB, a database dump of a fifth of the size, a few large image
files) or uniform (`--shape uniform`: 200 KiB files), backs it up with backupctl (local
job, `verify.sample: all` for the full comparison, evidence signed with an Ed25519 key as
on a hospital's orchestrator), then times in one run:
  full : `restic restore` + `sha256sum` of every file (as many in parallel as there are
         cores)  vs  `backupctl verify --mode full`
  quick: `restic restore --include` of the sampled files + `sha256sum`  vs  `--mode quick`
  (optional) `restverify run -r REPO -s SOURCE` (the PyPI peer), with --restverify BIN
and the peak RSS of backupctl (its own process, and including restic) in both modes, then
grows the data set (default to 3 GiB) and measures again.

    .venv/bin/python bench/verify.py --sizes 1 3 [--shape mixed|uniform] [--workdir DIR]
        [--restverify BIN] [--code DIR]

--code DIR runs backupctl from another checkout (e.g. an older commit, for a before/after
table); the plain tools are measured in the same run either way. Python runs with -P, so
the directory the bench is started from never shadows --code (before 2026-12-02 it did:
started from a checkout, `python -m backupctl` ran that checkout whatever --code said).
The code under test is compiled to bytecode first, as `pip install` does: an environment
that sets PYTHONDONTWRITEBYTECODE would otherwise compile every module on every start.

Prints a Markdown report on stdout (docs/benchmarks.md holds a run). Runs in < 10 min on
2 cores. Deletes its work directory at the end unless --keep.
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from backupctl.restic.commands import escape_glob

PASSWORD = "bench-password-not-secret"
FILE_SIZE = 200 * 1024  # 1 GiB = 5 243 files
BACKUPCTL = [sys.executable, "-P", "-m", "backupctl"]  # -P: the cwd never shadows --code


@dataclass
class Run:
    seconds: float
    rss_self_kib: int  # peak RSS of the measured process itself (VmHWM)
    rss_tree_kib: int  # wait4 ru_maxrss (Linux: the largest of it and its reaped children)
    returncode: int


def environ(extra: dict[str, str] | None) -> dict[str, str]:
    """This process's environment with `extra` (the --code checkout's PYTHONPATH) on top."""
    return {**os.environ, **(extra or {})}


def measure(argv: list[str], *, env: dict[str, str] | None = None,
            stdout: int | None = subprocess.DEVNULL) -> Run:
    """Run argv; wall time, VmHWM polled from /proc, and wait4's ru_maxrss."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE,
                            env=environ(env))
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        status = Path(f"/proc/{proc.pid}/status")
        while not done.is_set():
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - started
    done.set()
    watcher.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0,):
        sys.stderr.write(f"{argv[:4]}… exited {proc.returncode}: {err.decode()[-2000:]}\n")
    return Run(elapsed, peak, usage.ru_maxrss, proc.returncode)


def timed(argvs: list[list[str]], *, stdin_password: bool = False) -> float:
    """Wall time of several commands in sequence (the plain-tools pipeline)."""
    started = time.monotonic()
    for argv in argvs:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                       input=(PASSWORD + "\n").encode() if stdin_password else None)
    return time.monotonic() - started


def _files(total: int, shape: str, rng: random.Random) -> list[tuple[str, int]]:
    """(kind, size) of files adding up to `total` bytes.

    mixed: 70 % in files of 2 KB–1 MB (log-uniform: most are small, like documents, lab
    results and scanned forms), 20 % in one database dump, 10 % in large files of 64 MiB
    (imaging); uniform: 200 KiB files."""
    if shape == "uniform":
        return [("file", FILE_SIZE)] * max(1, total // FILE_SIZE)
    files = [("dump", total // 5)]
    files += [("image", 64 << 20)] * max(1, total // 10 // (64 << 20))
    small = total - sum(size for _, size in files)
    while small > 0:
        size = int(math.exp(rng.uniform(math.log(2_000), math.log(1_000_000))))
        files.append(("file", size))
        small -= size
    return files


def grow(src: Path, gib: float, shape: str = "mixed") -> int:
    """Add random files until the data set holds `gib` GiB; returns the file count."""
    target = int(gib * (1 << 30))
    have = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    i = len(list(src.rglob("*")))
    suffix = {"dump": "dump", "image": "dcm", "file": "bin"}
    for kind, size in _files(target - have, shape, random.Random(i)) if target > have else []:
        sub = src / f"d{i // 500:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"{kind} {i:06d}.{suffix[kind]}").write_bytes(os.urandom(size))
        i += 1
    return sum(1 for p in src.rglob("*") if p.is_file())


def sha256sum_tree(root: Path) -> list[list[str]]:
    """`find ROOT -type f -print0 | xargs -0 -P CORES -n 64 sha256sum`: every core hashes,
    as backupctl's hashing threads do."""
    return [["sh", "-c", 'find "$1" -type f -print0 | xargs -0 -r -P "$(nproc)" -n 64 '
             'sha256sum >/dev/null', "sh", str(root)]]


class Bench:
    def __init__(self, work: Path, shape: str = "mixed", code: Path | None = None) -> None:
        self.work = work
        self.shape = shape
        self.env = {"PYTHONPATH": str(code.resolve())} if code else None
        self.src = work / "src"
        self.repo = work / "repo"
        self.scratch = work / "scratch"
        self.pw = work / "pw"
        self.rows: list[str] = []
        self.plain_wipes: list[float] = []  # the plain pipeline's `rm -rf`, timed apart

    def setup(self) -> None:
        for d in (self.src, self.scratch, work_jobs := self.work / "jobs"):
            d.mkdir(parents=True, exist_ok=True)
        self.pw.write_text(PASSWORD + "\n")
        self.pw.chmod(0o600)
        subprocess.run(["restic", "init", "-q", "--repo", str(self.repo), "--password-file",
                        str(self.pw)], check=True)
        # evidence signed as on a hospital's orchestrator (every run signs its record)
        (self.work / "backupctl.yaml").write_text(json.dumps({
            "jobs_dir": str(work_jobs), "state_dir": str(self.work / "state"),
            "scratch_dir": str(self.scratch), "known_hosts": str(self.work / "known_hosts"),
            "evidence_key": str(self.work / "evidence.key")}))
        subprocess.run(self.cli("evidence", "init-key"), check=True, env=environ(self.env),
                       stdout=subprocess.DEVNULL)
        self.write_job("all")

    def write_job(self, sample: str) -> None:
        (self.work / "jobs" / "bench.yaml").write_text(json.dumps({
            "job": "bench", "host": {"address": "local"},
            "source": {"paths": [str(self.src)]},
            "repository": {"url": str(self.repo), "password_file": str(self.pw)},
            "generations": {"last": 10}, "verify": {"sample": sample},
            # growing the data set on purpose must not trip the ransomware spike detector
            "tripwire": {"changed_min": 10_000_000},
            "schedule": {"backup": "*-*-* 02:00:00", "verify": "Sun *-*-* 04:00:00"}}))

    def code_dir(self) -> Path:
        """The backupctl package the runs import (the --code checkout's, or the installed)."""
        probe = [*BACKUPCTL[:2], "-c", "import backupctl; print(backupctl.__file__)"]
        out = subprocess.run(probe, check=True, capture_output=True, text=True,
                             env=environ(self.env)).stdout
        return Path(out.strip()).parent

    def cli(self, *args: str) -> list[str]:
        return [*BACKUPCTL, "-c", str(self.work / "backupctl.yaml"), *args]

    def backup(self) -> float:
        run = measure(self.cli("backup", "bench"), env=self.env)
        if run.returncode != 0:
            raise SystemExit("backup failed")
        return run.seconds

    def restic(self, *args: str) -> list[str]:
        return ["restic", "--repo", str(self.repo), "--password-file", str(self.pw),
                "--no-cache", *args]

    def sampled(self) -> list[str]:
        db = sqlite3.connect(self.work / "state" / "state.db")
        snap = db.execute(
            "SELECT snapshot_id FROM manifest ORDER BY id DESC LIMIT 1").fetchone()[0]
        return [r[0] for r in db.execute(
            "SELECT path FROM manifest WHERE snapshot_id=? AND state='ok'", (snap,))]

    def verify(self, mode: str) -> Run:
        run = measure(self.cli("verify", "bench", "--mode", mode, "--json"),
                      env=self.env, stdout=subprocess.PIPE)
        if run.returncode != 0:
            raise SystemExit(f"verify --mode {mode} failed")
        return run

    def plain_full(self) -> float:
        target = self.scratch / "plain-full"
        try:
            return timed([self.restic("restore", "latest", "--target", str(target)),
                          *sha256sum_tree(target)])
        finally:
            self.plain_wipes.append(timed([["rm", "-rf", str(target)]]))

    def plain_quick(self, paths: list[str]) -> float:
        target = self.scratch / "plain-quick"
        includes = [a for p in paths for a in ("--include", escape_glob(p))]
        try:
            return timed([self.restic("restore", "latest", "--target", str(target),
                                      *includes), *sha256sum_tree(target)])
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def restverify(self, binary: str) -> Run:
        return measure([binary, "run", "-r", str(self.repo), "-s", str(self.src), "--json"],
                       env={"RESTIC_PASSWORD_FILE": str(self.pw)}, stdout=subprocess.PIPE)

    def round(self, gib: float, *, restverify: str | None, compare: bool,
              repeat: int) -> None:
        files = grow(self.src, gib, self.shape)
        self.write_job("all")
        backup_s = self.backup()
        size = sum(p.stat().st_size for p in self.src.rglob("*") if p.is_file())
        label = f"{size / (1 << 30):.2f} GiB / {files} files"
        self.rows.append(f"| {label} | backup (sample all: manifest of every file) | "
                         f"{backup_s:.1f} s | | |")
        self.plain_wipes.clear()
        fulls, plains = contest(repeat, lambda: self.verify("full"),
                                self.plain_full if compare else None)
        full = min(fulls, key=lambda r: r.seconds)
        rss = max(r.rss_self_kib for r in fulls)
        if compare:
            plain = min(plains)
            self.rows.append(f"| {label} | plain `restic restore` + `sha256sum` | "
                             f"{plain:.1f} s | | |")
        self.rows.append(f"| {label} | `backupctl verify --mode full` (sample all) | "
                         f"{full.seconds:.1f} s | {rss / 1024:.0f} MiB | |")
        if compare:
            self.rows += ratio_rows(label, "full", full.seconds / plain, fulls, plains)
            # the same work as backupctl's, which wipes the restored patient data itself
            # (the warm-up's wipe is the first; each timed run's follows)
            wipes = self.plain_wipes[1:]
            pairs = [o.seconds / (p + w) for o, p, w in zip(fulls, plains, wipes, strict=True)]
            self.rows.append(f"| {label} | → full ratio against plain + `rm -rf` (timed apart, "
                             f"{statistics.median(wipes):.2f} s), median of pairs | "
                             f"{statistics.median(pairs):.2f}× | | |")
        if restverify and compare:
            settle()
            rv = self.restverify(restverify)
            self.rows.append(f"| {label} | `restverify run -r REPO -s SRC` (exit "
                             f"{rv.returncode}) | {rv.seconds:.1f} s | "
                             f"{rv.rss_self_kib / 1024:.0f} MiB | "
                             f"{rv.rss_tree_kib / 1024:.0f} MiB |")
        self.write_job("5%")
        self.backup()
        paths = self.sampled()
        quicks, plain_qs = contest(repeat, lambda: self.verify("quick"),
                                   (lambda: self.plain_quick(paths)) if compare else None)
        quick = min(quicks, key=lambda r: r.seconds)
        rss = max(r.rss_self_kib for r in quicks)
        if compare:
            plain_q = min(plain_qs)
            self.rows.append(f"| {label} | plain `restic restore --include` ×{len(paths)} + "
                             f"`sha256sum` | {plain_q:.1f} s | | |")
        self.rows.append(f"| {label} | `backupctl verify --mode quick` (5 %, {len(paths)} "
                         f"files) | {quick.seconds:.1f} s | {rss / 1024:.0f} MiB | |")
        if compare:
            self.rows += ratio_rows(label, "quick", quick.seconds / plain_q, quicks, plain_qs)


def ratio_rows(label: str, mode: str, best: float, ours: list[Run],
               plain: list[float]) -> list[str]:
    """The ratio of the bests, and of each alternating pair (run i of both, one after the
    other): their median is steadier than the bests when one restore in a few is slow."""
    pairs = sorted(o.seconds / p for o, p in zip(ours, plain, strict=True))
    median = statistics.median(pairs)
    return [f"| {label} | → {mode} ratio backupctl / plain (best / best) | **{best:.2f}×** "
            "| | |",
            f"| {label} | → {mode} ratio of the {len(pairs)} pairs: median (range) | "
            f"**{median:.2f}×** ({pairs[0]:.2f}–{pairs[-1]:.2f}) | | |"]


def settle() -> None:
    """Flush dirty pages so one contender's writes are not paid for by the next."""
    os.sync()
    time.sleep(0.5)


def contest(repeat: int, ours: Callable[[], Run],
            plain: Callable[[], float] | None) -> tuple[list[Run], list[float]]:
    """`repeat` runs of each contender (one of ours without `plain`), alternating which goes
    first, after one untimed run of the plain pipeline; the best of each is kept. The first
    restore after a backup finds a file system that has freed no inodes lately and is much
    faster on ext4 (3.0 s against 4.3 s, 1 GiB): no contender may get that slot, and the
    machine is shared, its page cache and writeback changing from one run to the next."""
    ours_runs: list[Run] = []
    plain_runs: list[float] = []
    if plain is not None:
        settle()
        plain()
    for i in range(repeat if plain is not None else 1):
        for turn in ("ours", "plain") if i % 2 == 0 else ("plain", "ours"):
            if turn == "ours":
                settle()
                ours_runs.append(ours())
            elif plain is not None:
                settle()
                plain_runs.append(plain())
    return ours_runs, plain_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1.0, 3.0],
                        help="data set sizes in GiB (each compared with the plain tools)")
    parser.add_argument("--shape", choices=("mixed", "uniform"), default="mixed",
                        help="mixed: hospital-shaped sizes; uniform: 200 KiB files")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--restverify", default=None, help="restverify binary to compare")
    parser.add_argument("--repeat", type=int, default=2,
                        help="alternating runs per contender (best kept)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--code", type=Path, default=None,
                        help="run backupctl from this checkout (default: the installed one)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="backupctl-bench-"))
    bench = Bench(work, args.shape, args.code)
    code = bench.code_dir()
    compileall.compile_dir(code, quiet=1)
    started = time.monotonic()
    try:
        bench.setup()
        for gib in args.sizes:
            bench.round(gib, restverify=args.restverify, compare=True, repeat=args.repeat)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run(["restic", "version"], capture_output=True, text=True).stdout
    print(f"restic: {version.strip()}; cores: {os.cpu_count()}; data: {args.shape}; "
          f"backupctl: {code} (bytecode compiled); "
          f"total bench time {time.monotonic() - started:.0f} s\n")
    print("| data | what | wall time | peak RSS (measured process) | peak RSS (incl. "
          "children) |")
    print("|---|---|---|---|---|")
    print("\n".join(bench.rows))


if __name__ == "__main__":
    main()
