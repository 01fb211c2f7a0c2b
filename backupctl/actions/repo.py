"""Reaching a job's repositories: which runner, which URL, which password; running restic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backupctl.actions.context import Context
from backupctl.config.schema import Job
from backupctl.errors import ResticError, UsageError
from backupctl.execute import Arg, Result, Runner, Secret, StdoutSink
from backupctl.restic import commands as restic
from backupctl.restic import parse
from backupctl.restic.codes import ResticExit, classify
from backupctl.secrets import read_secret

PRIMARY = "primary"


@dataclass(frozen=True)
class Repo:
    """One repository of a job as the orchestrator reaches it."""

    name: str  # "primary" or a copy name
    url: str
    password: Secret


def primary(job: Job) -> Repo:
    return Repo(PRIMARY, job.repository.orchestrator_url,
                read_secret(job.repository.password_file))


def check_name(job: Job, name: str) -> None:
    """An unknown repository name is a usage error (exit 2), found before anything runs."""
    if name != PRIMARY and name not in {c.name for c in job.copies}:
        names = ", ".join([PRIMARY, *(c.name for c in job.copies)])
        raise UsageError(f"{job.name}: no repository named {name!r} (have: {names})")


def named(job: Job, name: str) -> Repo:
    """`primary` or one of the job's copies; an unknown name is a usage error."""
    check_name(job, name)
    if name == PRIMARY:
        return primary(job)
    copy = job.copy_named(name)
    return Repo(copy.name, copy.url, read_secret(copy.password_file))


def run_restic(runner: Runner, argv: Sequence[Arg], *, job: str, what: str,
               timeout: float | None, stdout_sink: StdoutSink | None = None,
               allow: tuple[ResticExit, ...] = (),
               unlock_stale: Repo | None = None,
               unlock_runner: Runner | None = None) -> tuple[Result, ResticExit]:
    """Run restic; any outcome but OK (or one listed in `allow`) raises ResticError.

    With `unlock_stale` (the repository as `unlock_runner`, default `runner`, reaches it),
    a run stopped by a lock is retried once after `restic unlock`, which removes only stale
    locks (their restic is gone on this host, or they are older than 30 minutes), never a
    live one: restic 0.14 keeps the lock of a restic that was killed (a backup whose SSH
    connection dropped), and it would block every later backup, `forget --prune`, listing.
    """
    result = runner.run(argv, timeout=timeout, stdout_sink=stdout_sink)
    outcome = ResticExit.FATAL if result.timed_out else classify(result.returncode, result.stderr)
    if outcome is ResticExit.LOCKED and unlock_stale is not None:
        (unlock_runner or runner).run(restic.unlock(unlock_stale.url, unlock_stale.password),
                                      timeout=600)
        result = runner.run(argv, timeout=timeout, stdout_sink=stdout_sink)
        outcome = (ResticExit.FATAL if result.timed_out
                   else classify(result.returncode, result.stderr))
    if outcome is ResticExit.OK or outcome in allow:
        return result, outcome
    raise ResticError(f"{job}: {what} failed ({outcome.value}) {result.describe()}"
                      + hint(job, outcome))


def hint(job: str, outcome: ResticExit) -> str:
    """What to do about a restic outcome (appended to error messages)."""
    if outcome is ResticExit.NO_REPOSITORY:
        return f"\nTo create the repository, run: backupctl init {job}"
    if outcome is ResticExit.WRONG_PASSWORD:
        return "\nCheck the job's password_file: it does not open this repository."
    if outcome is ResticExit.LOCKED:
        return ("\nAnother restic process holds the repository lock; if none is running, "
                "remove a stale lock with `restic unlock`.")
    return ""


def snapshots(ctx: Context, job: Job, repo: Repo) -> list[parse.Snapshot]:
    result, _ = run_restic(ctx.local, restic.snapshots(repo.url, repo.password, host=job.name),
                           job=job.name, what=f"listing snapshots of {repo.name}", timeout=600,
                           unlock_stale=repo)
    return parse.snapshots(result.stdout)
