"""A job's repositories as the orchestrator reaches them: which URL, which password."""

from __future__ import annotations

import re

from backupctl.actions.context import Context
from backupctl.config.schema import Job
from backupctl.errors import UsageError
from backupctl.restic import commands as restic
from backupctl.restic import parse
from backupctl.restic import run as restic_run
from backupctl.restic.run import Repo
from backupctl.secrets import read_secret

PRIMARY = "primary"
_CREDENTIALS = re.compile(r"(://[^/:@]+):([^/@]*)@")

__all__ = ["PRIMARY", "Repo", "check_name", "display_url", "named", "primary", "snapshots"]


def display_url(url: str) -> str:
    """A repository URL without credentials (rest:http://user:pass@host/ → user:***)."""
    return _CREDENTIALS.sub(r"\1:***@", url)


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


def snapshots(ctx: Context, job: Job, repo: Repo) -> list[parse.Snapshot]:
    """The job's snapshots in `repo`, oldest first."""
    result, _ = restic_run.run(ctx.local, restic.snapshots(repo.url, repo.password,
                                                           host=job.name),
                               job=job.name, what=f"listing snapshots of {repo.name}",
                               timeout=600, unlock=repo)
    return parse.snapshots(result.stdout)
