"""Benchmark: `backupctl backup` against the plain `restic backup` + `restic forget --prune`.

Builds a hospital-shaped data set (bench/verify.py's `mixed` shape: many small files of
2 KB–1 MB, a database dump of a fifth of the size, a few 64 MiB image files), and two
repositories of it with a first backup each (untimed). Then, alternating which goes first,
`--repeat` times each:
  plain    : restic backup SRC && restic forget --keep-last 7 --prune   (repository A)
  backupctl: backupctl backup JOB (local job: manifest with a 5 % sample, tripwire,
             generations, state and signed evidence)                    (repository B)
in two rounds: `unchanged` (nothing changed since the last backup) and `daily` (2 % of the
small files rewritten before each run, the same files for both contenders). Both
repositories use restic's own key derivation (as a hospital's do), so every restic start
costs what it costs in production. Prints the best of each and the ratios, and the restic
processes backupctl started per backup (counted through a logging `restic` on PATH).

    .venv/bin/python bench/backup.py [--gib 1] [--repeat 3] [--workdir DIR] [--keep]
        [--code DIR]

--code DIR runs backupctl from another checkout (e.g. `git worktree add DIR COMMIT`, for a
before/after table, or a clean copy of HEAD while the working tree is being edited).

Prints Markdown (docs/benchmarks.md holds a run). A few minutes on 2 cores at 1 GiB.
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.verify import PASSWORD, grow, settle

BACKUPCTL = [sys.executable, "-P", "-m", "backupctl"]
KEEP_LAST = 7
COMMANDS = {"backup", "cat", "check", "copy", "dump", "find", "forget", "init", "ls",
            "prune", "restore", "snapshots", "unlock", "version"}


class Site:
    def __init__(self, work: Path, code: Path) -> None:
        self.work = work
        self.code = code
        self.src = work / "src"
        self.pw = work / "password"
        self.plain_repo = work / "repo-plain"
        self.ours_repo = work / "repo-backupctl"
        self.bin = work / "bin"
        self.log = work / "restic.log"
        self.config = work / "backupctl.yaml"

    def setup(self, gib: float) -> int:
        for d in (self.src, self.bin, self.work / "jobs", self.work / "state",
                  self.work / "scratch"):
            d.mkdir(parents=True, exist_ok=True)
        (self.work / "state").chmod(0o700)
        (self.work / "scratch").chmod(0o700)
        self.pw.write_text(PASSWORD + "\n")
        self.pw.chmod(0o600)
        files = grow(self.src, gib)
        restic = shutil.which("restic")
        assert restic, "restic is not installed"
        shim = self.bin / "restic"  # counts backupctl's restic starts
        shim.write_text(f'#!/bin/sh\necho "$*" >> {self.log}\nexec {restic} "$@"\n')
        shim.chmod(0o755)
        self.config.write_text(
            f"jobs_dir: {self.work / 'jobs'}\nstate_dir: {self.work / 'state'}\n"
            f"scratch_dir: {self.work / 'scratch'}\nknown_hosts: {self.work / 'known_hosts'}\n"
            f"evidence_key: {self.work / 'evidence.key'}\n")
        (self.work / "known_hosts").touch()
        (self.work / "jobs" / "hospital.yaml").write_text(
            f"job: hospital\nhost: {{address: local}}\nsource: {{paths: [{self.src}]}}\n"
            f"repository: {{url: {self.ours_repo}, password_file: {self.pw}}}\n"
            f"generations: {{last: {KEEP_LAST}}}\nverify: {{sample: 5%}}\n"
            "schedule: {backup: '*-*-* 02:00:00', verify: 'Sun *-*-* 04:00:00'}\n")
        for repo in (self.plain_repo, self.ours_repo):
            self.restic(repo, "init")
        subprocess.run([*BACKUPCTL, "-c", str(self.config), "evidence", "init-key"],
                       check=True, capture_output=True, env=self.env())
        self.plain()  # the first backups (everything new) are not timed
        self.ours()
        return files

    def restic(self, repo: Path, *args: str) -> None:
        subprocess.run(["restic", "-q", "-r", str(repo), "--password-file", str(self.pw),
                        *args], check=True, stdout=subprocess.DEVNULL)

    def plain(self) -> float:
        started = time.monotonic()
        self.restic(self.plain_repo, "backup", "--host", "hospital", str(self.src))
        self.restic(self.plain_repo, "forget", "--host", "hospital", "--keep-last",
                    str(KEEP_LAST), "--prune")
        return time.monotonic() - started

    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}",
                "PYTHONPATH": str(self.code)}

    def ours(self) -> float:
        env = self.env()
        self.log.write_text("")
        started = time.monotonic()
        done = subprocess.run([*BACKUPCTL, "-c", str(self.config), "backup", "hospital"],
                              env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"backupctl backup exited {done.returncode}: {done.stderr}")
        return elapsed

    def restic_starts(self) -> list[str]:
        """The command word of each restic start logged (backup, ls, forget, ...)."""
        return [next((w for w in line.split() if w in COMMANDS), line.split()[-1])
                for line in self.log.read_text().splitlines()]

    def change(self, share: float, rng: random.Random) -> None:
        small = sorted(p for p in self.src.rglob("*.bin"))
        for path in rng.sample(small, max(1, int(len(small) * share))):
            path.write_bytes(os.urandom(path.stat().st_size))


def contest(site: Site, repeat: int, *,
            before: Callable[[int], None] | None = None) -> tuple[list[float], list[float]]:
    """`repeat` runs each, alternating which goes first; `before(i)` runs untimed first."""
    ours: list[float] = []
    plain: list[float] = []
    for i in range(repeat):
        if before is not None:
            before(i)
        for turn in ("ours", "plain") if i % 2 == 0 else ("plain", "ours"):
            settle()
            (ours if turn == "ours" else plain).append(
                site.ours() if turn == "ours" else site.plain())
    return ours, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1],
                        help="run backupctl from this checkout (default: this one)")
    args = parser.parse_args()
    code = args.code.resolve()
    compileall.compile_dir(code / "backupctl", quiet=1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="backupctl-bench-backup-"))
    site = Site(work, code)
    rows = []
    try:
        files = site.setup(args.gib)
        rounds: list[tuple[str, Callable[[int], None] | None]] = [
            ("unchanged", None),
            ("daily (2 % of the small files rewritten)",
             lambda i: site.change(0.02, random.Random(i)))]
        for label, before in rounds:
            ours, plain = contest(site, args.repeat, before=before)
            rows.append(f"| {label} | {min(plain):.2f} s | {min(ours):.2f} s | "
                        f"**{min(ours) / min(plain):.2f}×** | "
                        f"{len(site.restic_starts())}: {', '.join(site.restic_starts())} |")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run(["restic", "version"], capture_output=True, text=True).stdout
    print(f"{args.gib:g} GiB, {files} files (mixed shape); {version.strip()}; "
          f"cores: {os.cpu_count()}; best of {args.repeat} alternating; backupctl: {code}\n")
    print("| backup | plain restic backup + forget --prune | backupctl backup | ratio "
          "(best / best) | restic processes of the last backupctl run |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
