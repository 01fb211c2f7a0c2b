"""A job's repositories as the orchestrator reaches them: which URL, which password."""

from __future__ import annotations

from backupctl.actions.context import Context
from backupctl.config.schema import Job
from backupctl.errors import ResticError, UsageError
from backupctl.restic import commands as restic
from backupctl.restic import parse, s3
from backupctl.restic import run as restic_run
from backupctl.restic.codes import ResticExit
from backupctl.restic.run import Repo
from backupctl.secrets import display_url, read_secret

PRIMARY = "primary"

__all__ = ["PRIMARY", "Repo", "check_name", "display_url", "files", "init_repository", "named",
           "primary", "snapshots"]


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
    if copy.s3_credentials_file is not None:
        # every restic command for this URL carries them in its environment from now on
        s3.use(copy.url, copy.s3_credentials_file)
    return Repo(copy.name, copy.url, read_secret(copy.password_file))


def snapshots(ctx: Context, job: Job, repo: Repo) -> list[parse.Snapshot]:
    """The job's snapshots in `repo`, oldest first: its files' and its database dumps'."""
    result, _ = restic_run.run(ctx.local, restic.snapshots(repo.url, repo.password,
                                                           host=job.name),
                               job=job.name, what=f"listing snapshots of {repo.name}",
                               timeout=600, unlock=repo)
    return parse.snapshots(result.stdout)


def files(held: list[parse.Snapshot]) -> list[parse.Snapshot]:
    """The snapshots of the job's files (what generations count), without database dumps."""
    return [s for s in held if not restic.is_database(s.tags)]


def init_repository(ctx: Context, job: Job, *, copies: bool = False) -> list[str]:
    """Create the job's repository (and its copies) where missing; returns what was done."""
    done = []
    targets = [primary(job)]
    if copies:
        targets += [named(job, c.name) for c in job.copies]
    for copy in job.copies if copies else []:
        # objectlock (urllib, the S3 probes): only `init --copies` of an S3 copy uses it
        from backupctl.actions import objectlock

        if objectlock.uses_lock(copy):  # before restic writes anything into the bucket
            done.append(objectlock.require_lock(copy))
    for target in targets:
        result, outcome = restic_run.attempt(
            ctx.local, restic.snapshots(target.url, target.password), timeout=300)
        shown = display_url(target.url)
        if outcome is ResticExit.OK:
            done.append(f"{target.name}: {shown} already exists")
            continue
        if outcome is not ResticExit.NO_REPOSITORY:
            raise ResticError(f"{job.name}: cannot check repository {target.name} "
                              f"{result.describe()}")
        restic_run.run(ctx.local, restic.init(target.url, target.password), job=job.name,
                       what=f"creating repository {target.name}", timeout=300)
        done.append(f"{target.name}: created {shown}")
    return done
