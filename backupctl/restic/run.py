"""Running restic: one repository handle, one way to run it, one stale-lock rule.

A restic killed by SIGKILL, a power cut or a lost SSH connection leaves its lock in the
repository and restic 0.14 never expires it: every later backup, prune or restore test would
then fail as "locked". `run` therefore retries a locked run once after `restic unlock`, which
removes only *stale* locks (their process is gone on this host, or they are older than 30
minutes), never a live one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from backupctl.errors import Reason, ResticError
from backupctl.execute import Arg, Result, Runner, Secret, StdoutSink, program
from backupctl.files import write_atomic
from backupctl.restic import commands, parse
from backupctl.restic.codes import ResticExit, classify
from backupctl.restic.parse import version as parse_version
from backupctl.restic.watch import RetryWatch


@dataclass(frozen=True)
class Repo:
    """One repository of a job as the orchestrator reaches it."""

    name: str  # "primary" or a copy name
    url: str
    password: Secret


def outcome_of(result: Result) -> ResticExit:
    """restic's exit, from its code and stderr (a timeout is fatal, never a pass; a run the
    RetryWatch stopped could not reach its repository)."""
    if result.stopped:
        return ResticExit.UNREACHABLE
    return ResticExit.FATAL if result.timed_out else classify(result.returncode, result.stderr)


def attempt(runner: Runner, argv: Sequence[Arg], *, timeout: float | None,
            stdout_sink: StdoutSink | None = None, unlock: Repo | None = None,
            unlock_runner: Runner | None = None,
            on_unlock: Callable[[Result], None] | None = None) -> tuple[Result, ResticExit]:
    """Run restic once (twice if a stale lock stopped it and `unlock` names the repository).

    `unlock_runner` (default `runner`) is where `restic unlock` runs: the orchestrator, where
    restic can tell that a lock's process is gone. Never raises for restic's own outcome.
    """
    def run() -> tuple[Result, ResticExit]:
        result = runner.run(argv, timeout=timeout, stdout_sink=stdout_sink,
                            stderr_watch=RetryWatch())
        return result, outcome_of(result)

    first = run()
    if unlock is None or first[1] is not ResticExit.LOCKED:
        return first
    # Two attempts in plain code rather than tenacity's Retrying, whose import every command
    # paid at start-up (~5 ms on 2 cores, issue 25).
    done = (unlock_runner or runner).run(commands.unlock(unlock.url, unlock.password),
                                         timeout=600, stderr_watch=RetryWatch())
    if on_unlock is not None:
        on_unlock(done)
    return run()


def run(runner: Runner, argv: Sequence[Arg], *, job: str, what: str,
        timeout: float | None, stdout_sink: StdoutSink | None = None,
        allow: tuple[ResticExit, ...] = (), unlock: Repo | None = None,
        unlock_runner: Runner | None = None) -> tuple[Result, ResticExit]:
    """Run restic; any outcome but OK (or one listed in `allow`) raises ResticError naming
    `what` failed, where, and what to do about it."""
    result, outcome = attempt(runner, argv, timeout=timeout, stdout_sink=stdout_sink,
                              unlock=unlock, unlock_runner=unlock_runner)
    if outcome is ResticExit.OK or outcome in allow:
        return result, outcome
    raise failure(result, outcome, job=job, what=what)


def failure(result: Result, outcome: ResticExit, *, job: str, what: str) -> ResticError:
    """The error `run` raises for an outcome it does not allow."""
    shown = dataclasses.replace(result, stderr=parse.plain_stderr(result.stderr))
    return ResticError(f"{job}: {what} failed ({outcome.value}) {shown.describe()}"
                       + hint(job, outcome), reason=reason_of(result, outcome))


_REASONS = {ResticExit.NO_REPOSITORY: Reason.REPOSITORY,
            ResticExit.WRONG_PASSWORD: Reason.PASSWORD, ResticExit.LOCKED: Reason.LOCKED,
            ResticExit.UNREACHABLE: Reason.UNREACHABLE}


def reason_of(result: Result, outcome: ResticExit) -> Reason | None:
    """The failure category of a restic outcome (timed out, no repository, …), if any."""
    return Reason.TIMEOUT if result.timed_out else _REASONS.get(outcome)


def hint(job: str, outcome: ResticExit) -> str:
    """What to do about a restic outcome (appended to error messages)."""
    if outcome is ResticExit.NO_REPOSITORY:
        return f"\nTo create the repository, run: backupctl init {job}"
    if outcome is ResticExit.WRONG_PASSWORD:
        return "\nCheck the job's password_file: it does not open this repository."
    if outcome is ResticExit.LOCKED:
        return ("\nAnother restic process holds the repository lock; if none is running, "
                "remove a stale lock with `restic unlock`.")
    if outcome is ResticExit.UNREACHABLE:
        return ("\nCheck that the repository's server (or the disk or share holding it) is "
                "up and reachable from where restic ran; nothing was changed.")
    return ""


def installed_version(runner: Runner) -> str:
    """`restic version` on the runner's host: `0.14.0`, or `unknown`."""
    result = runner.run(commands.version(), timeout=30)
    return parse_version(result.stdout.decode(errors="replace")) if result.ok else "unknown"


def cached_version(runner: Runner, cache: Path) -> str:
    """The orchestrator's restic version, asked once per binary: `cache` keeps it with the
    binary's path, inode, size and modification time, so an upgrade asks again (a process
    start, ~30 ms, saved on every run)."""
    binary = shutil.which(program(runner, commands.RESTIC))
    try:
        info = os.stat(binary) if binary else None
    except OSError:
        info = None
    if binary is None or info is None:
        return installed_version(runner)
    key = f"{os.path.realpath(binary)}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        known = json.loads(cache.read_text(encoding="utf-8"))
        if known.get("binary") == key and isinstance(known.get("version"), str):
            return str(known["version"])
    found = installed_version(runner)
    if found != "unknown":
        with contextlib.suppress(OSError):
            write_atomic(cache, json.dumps({"binary": key, "version": found}), mode=0o644)
    return found
