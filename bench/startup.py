"""Benchmark: backupctl's own CPU, two checkouts alternating (issue #25).

CPU time, not wall time: on a busy machine the wall clock measures the neighbours, while
the CPU-seconds a process used (getrusage) move much less. Two measures, `--repeat` runs of
each checkout, alternating which goes first:
  imports: a fresh interpreter builds the command line for `backup` and imports the backup
           action (what every `backupctl backup` imports before it does anything);
  backup : `backupctl backup JOB` of an unchanged local one-file job (bench/backup.py's job:
           manifest, tripwire, generations, state, signed evidence): the Python process's
           own CPU (restic excluded) and the whole run's (with the three restic processes).

    .venv/bin/python -P bench/startup.py --code DIR [--code DIR] [--repeat 20]
        [--workdir DIR] [--keep]

DIR is a checkout with compiled bytecode (`git worktree add DIR COMMIT`, or `git archive
COMMIT backupctl | tar -x -C DIR`; the bench compiles it). Prints Markdown (min / median).
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import backup as bench_backup

IMPORTS = ("import resource\nfrom backupctl.cli.main import build\nbuild(['backup', 'x'])\n"
           "import backupctl.actions.backup\nr = resource.getrusage(resource.RUSAGE_SELF)\n"
           "print(r.ru_utime + r.ru_stime)\n")
# The program as `backupctl` runs it, printing its own CPU when it exits.
PROGRAM = ("import atexit, resource, sys\n"
           "def own() -> None:\n"
           "    r = resource.getrusage(resource.RUSAGE_SELF)\n"
           "    print(r.ru_utime + r.ru_stime, file=sys.stderr)\n"
           "atexit.register(own)\nsys.argv = ['backupctl'] + sys.argv[1:]\n"
           "from backupctl.cli import main\nmain()\n")


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def imports(code: Path) -> float:
    done = subprocess.run([sys.executable, "-P", "-c", IMPORTS], check=True, text=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(code)})
    return float(done.stdout.split()[-1])


def backup(site: bench_backup.Site, code: Path) -> tuple[float, float]:
    """(the Python process's own CPU, the whole run's CPU with restic)."""
    before = _children_cpu()
    done = subprocess.run([sys.executable, "-P", "-c", PROGRAM, "-c", str(site.config),
                           "backup", "hospital"], text=True, capture_output=True,
                          env={**site.env(), "PYTHONPATH": str(code)})
    whole = _children_cpu() - before
    if done.returncode != 0:
        raise SystemExit(f"backupctl backup exited {done.returncode}: {done.stderr}")
    return float(done.stderr.split()[-1]), whole


def _cell(values: list[float], scale: float = 1.0, fmt: str = "{:.3f}") -> str:
    return f"{fmt.format(min(values) * scale)} / {fmt.format(statistics.median(values) * scale)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, action="append", required=True)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    codes = [c.resolve() for c in args.code]
    for code in codes:
        compileall.compile_dir(code / "backupctl", quiet=1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="backupctl-bench-startup-"))
    site = bench_backup.Site(work, codes[0])
    site.src.mkdir(parents=True, exist_ok=True)
    (site.src / "one.txt").write_text("one file\n")
    vars(bench_backup)["grow"] = lambda src, gib: 1  # the one file, not a data set
    results: dict[Path, tuple[list[float], list[float], list[float]]] = {
        c: ([], [], []) for c in codes}
    try:
        site.setup(0)
        for i in range(args.repeat):
            for code in codes if i % 2 == 0 else codes[::-1]:
                results[code][0].append(imports(code))
                own, whole = backup(site, code)
                results[code][1].append(own)
                results[code][2].append(whole)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{args.repeat} runs of each, alternating; cores: {os.cpu_count()}; min / median\n")
    print("| code | imports of a backup (CPU ms) | `backupctl backup` own CPU (s) | "
          "with restic (CPU s) |")
    print("|---|---|---|---|")
    for code, (imported, owns, wholes) in results.items():
        print(f"| {code} | {_cell(imported, 1000, '{:.0f}')} | {_cell(owns)} | {_cell(wholes)} |")


if __name__ == "__main__":
    main()
