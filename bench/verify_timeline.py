"""Where a full verify's time goes: a timeline of every process it starts and its steps.

    .venv/bin/python bench/verify_timeline.py -c CONFIG JOB [--mode full|quick]

Runs `backupctl verify JOB` in this process with the process starts (`LocalRunner._spawn`)
and the restore test's steps (counting, hashing, scratch creation and wipe) wrapped, then
prints each with its start, end and duration in seconds since this script started
(docs/benchmarks.md, "Where backupctl's time goes"). Keep a bench/verify.py work directory
with --keep to have a data set and configuration to run it on.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

T0 = time.monotonic()

import backupctl.actions.restore_test.full as full  # noqa: E402
import backupctl.execute.local as local  # noqa: E402
from backupctl.actions.restore_test import scratch  # noqa: E402
from backupctl.cli import common  # noqa: E402

events: list[tuple[float, float, str]] = []


def _timed(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic() - T0
        try:
            return func(*args, **kwargs)
        finally:
            events.append((started, time.monotonic() - T0, name))
    return wrapper


def _spawn_label(argv: Any) -> str:
    words = [str(w) for w in argv if not str(w).startswith("/dev/fd/")]
    valued = {"--repo", "--password-file", "--repository-file"}
    return " ".join(w for i, w in enumerate(words) if w not in valued and w != "--no-cache"
                    and (i == 0 or words[i - 1] not in valued))[:100]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("job")
    parser.add_argument("--mode", default="full", choices=("full", "quick"))
    args = parser.parse_args()
    imported = time.monotonic() - T0
    spawn = local.LocalRunner._spawn

    def traced_spawn(self: local.LocalRunner, argv: Any, *rest: Any, **kwargs: Any) -> Any:
        return _timed(_spawn_label(argv), spawn)(self, argv, *rest, **kwargs)

    local.LocalRunner._spawn = traced_spawn  # type: ignore[method-assign]
    for name in ("compare", "count_all", "count_by_digest", "guess_latest", "references"):
        setattr(full, name, _timed(f"py: {name}", getattr(full, name)))
    for name in ("load", "context"):  # before the command module imports them by name
        setattr(common, name, _timed(f"py: cli {name}", getattr(common, name)))
    for name in ("make", "wipe"):
        setattr(scratch, name, _timed(f"py: scratch.{name}", getattr(scratch, name)))
    from backupctl.cli.main import main as backupctl
    sys.argv = ["backupctl", "-c", args.config, "verify", args.job, "--mode", args.mode]
    code = 0
    try:
        backupctl()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    print(f"{0:6.2f} → {imported:6.2f} ({imported:5.2f})  imports of the benchmark's modules")
    for start, end, what in sorted(events):
        print(f"{start:6.2f} → {end:6.2f} ({end - start:5.2f})  {what}")
    print(f"exit {code} at {time.monotonic() - T0:.2f} s")


if __name__ == "__main__":
    main()
