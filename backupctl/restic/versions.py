"""Which restic versions backupctl works with, and the check that refuses the others.

Supported: restic 0.14 (Debian 12) to 0.18 (Debian 13), on the orchestrator and on each
job's host independently (one server may be upgraded before the others). What differs
between them is handled where it shows: the exit codes (codes.py), JSON (parse.py), a
repository that cannot be reached (watch.py), names for `--stdin` (databases, evidence).
An older restic lacks what backupctl relies on (`--stdin-filename` snapshots that `copy`
keeps, repository format 2, `restic copy` with `--from-repo`), so it is refused before it
runs anything, with the version it found.
"""

from __future__ import annotations

import re

from backupctl.errors import Reason, ResticError, UsageError
from backupctl.execute import Runner, program
from backupctl.restic.run import installed_version

MINIMUM = (0, 14)
TESTED = ((0, 14), (0, 18))  # the versions every `make test` runs (tests/restic_versions.py)


def numbers(version: str) -> tuple[int, ...] | None:
    """`0.18.0` → (0, 18, 0); None when it is not a version (`unknown`)."""
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(n) for n in match.groups() if n is not None) if match else None


def at_least(version: str, wanted: tuple[int, ...]) -> bool:
    found = numbers(version)
    return found is not None and found >= wanted


def refuse_old(version: str, *, job: str, where: str, binary: str,
               orchestrator: bool = False) -> None:
    """ResticError (exit 1: the job's host, a failed run) when `version` is older than 0.14;
    on the `orchestrator` a UsageError (exit 2: backupctl itself is misconfigured, no run is
    started or recorded). `unknown` passes here: a restic that does not run fails the
    command that needs it, naming it."""
    if numbers(version) is not None and not at_least(version, MINIMUM):
        error = UsageError if orchestrator else ResticError
        raise error(
            f"{job}: restic {version} on {where} ({binary}) is too old: backupctl needs "
            f"restic {'.'.join(map(str, MINIMUM))} or newer (Debian 12 ships 0.14, Debian 13 "
            "0.18). Install a newer restic there, or give the path of one (host.restic in "
            "the job file; `restic` in the configuration for the orchestrator)"
            + ("; nothing was run" if orchestrator else ""), reason=Reason.CONFIG)


def require(runner: Runner, *, job: str, known: str | None = None) -> str:
    """The version of restic on the runner's host (`restic version`, or `known`: a local
    job's restic is the orchestrator's, whose version is cached); ResticError (exit 1,
    nothing else run) when it does not run there or is older than 0.14."""
    version = known if known and numbers(known) is not None else installed_version(runner)
    binary = program(runner, "restic")
    if numbers(version) is None:
        raise ResticError(
            f"{job}: cannot run `{binary} version` on {runner.host}: install restic "
            f"{'.'.join(map(str, MINIMUM))} or newer there, or give its path as host.restic "
            "in the job file", reason=Reason.CONFIG)
    refuse_old(version, job=job, where=runner.host, binary=binary)
    return version
