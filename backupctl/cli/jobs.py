"""Commands about jobs: validate, init, trust, backup, status."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from backupctl.actions import backup as backup_action
from backupctl.actions import status as status_action
from backupctl.actions.backup import BackupResult
from backupctl.actions.outcome import JobResult
from backupctl.cli.app import (
    app,
    context,
    die,
    emit_json,
    err,
    exit_with,
    load,
    out,
    run_each,
    select,
    show_plans,
)
from backupctl.errors import BackupctlError
from backupctl.status import ExitStatus

JobsArg = Annotated[list[str] | None, typer.Argument(help="job names", show_default=False)]
AllOpt = Annotated[bool, typer.Option("--all", help="every job in jobs_dir")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="print the plan, run nothing")]


@app.command()
def validate(strict: Annotated[bool, typer.Option(
        "--strict", help="also enforce the guideline: an offline/immutable copy and at least "
        "2 generations")] = False) -> None:
    """Check the configuration and every job file; errors as FILE:LINE: key: message."""
    config = load(strict=strict)
    err.print(f"{config.path}: OK, {len(config.jobs)} job(s): {', '.join(sorted(config.jobs))}",
              markup=False)


@app.command()
def init(job: str, copies: Annotated[bool, typer.Option(
        "--copies", help="also create the job's copy repositories")] = False,
         dry_run: DryOpt = False) -> None:
    """Create the job's missing repositories (never done implicitly)."""
    config = load()
    target = config.select([job], all_jobs=False)[0]
    if dry_run:
        urls = [target.repository.orchestrator_url, *(c.url for c in target.copies if copies)]
        for url in urls:
            out.print(f"would create (if missing): restic --repo {url} init", markup=False)
        return
    ctx = context(config)
    try:
        for line in backup_action.init_repository(ctx, target, copies=copies):
            err.print(f"{job}: {line}", markup=False)
    except BackupctlError as exc:
        die(exc)


@app.command()
def trust(job: str, fingerprint: Annotated[str | None, typer.Option(
        "--fingerprint", help="the SHA256:… fingerprint you expect (checked, not trusted "
        "blindly)")] = None,
          yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Show the job's SSH host key fingerprint and add it to known_hosts."""
    from backupctl.execute import hostkeys  # paramiko: only the SSH commands pay its import

    config = load()
    target = config.select([job], all_jobs=False)[0]
    if target.host.is_local:
        die(BackupctlError(f"{job}: host is local; there is no host key to trust"))
    known_hosts = config.settings.known_hosts
    try:
        offered = hostkeys.fetch(target.host.address, target.host.port)
        err.print(f"{job}: {offered.name} offers {offered.type} {offered.fingerprint}",
                  markup=False)
        old = hostkeys.current(known_hosts, offered.name, offered.type)
        if old is not None and old == offered.key:
            err.print(f"{job}: already trusted in {known_hosts}", markup=False)
            return
        if old is not None:
            err.print(f"{job}: WARNING: this REPLACES the key in {known_hosts} "
                      f"({hostkeys.fingerprint(old)})", markup=False)
        if fingerprint is None and not yes and not typer.confirm(
                "Is this the fingerprint shown on the server's console "
                "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub)?", err=True):
            err.print(f"{job}: nothing was trusted", markup=False)
            exit_with(ExitStatus.FAILED)
        hostkeys.add(known_hosts, offered, expected=fingerprint)
    except BackupctlError as exc:
        die(exc)
    err.print(f"{job}: trusted {offered.fingerprint} in {known_hosts}", markup=False)


def _backup_line(outcome: JobResult) -> str:
    if not isinstance(outcome, BackupResult) or outcome.snapshot_id is None:
        return ""
    return (f"snapshot {outcome.snapshot_id}, {outcome.files_new} new / "
            f"{outcome.files_changed} changed files, {outcome.bytes_added} bytes added, "
            f"{outcome.generations} generation(s) kept")


@app.command()
def backup(jobs: JobsArg = None, all_jobs: AllOpt = False, as_json: JsonOpt = False,
           dry_run: DryOpt = False) -> None:
    """Back up jobs: before → restic backup → after → forget --prune."""
    config = load()
    selected = select(config, jobs, all_jobs=all_jobs)
    if dry_run:
        show_plans("backup", {j.name: backup_action.plan(j) for j in selected}, as_json=as_json)
        return
    run_each("backup", config, selected, backup_action.backup, as_json=as_json,
             text=_backup_line)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Per job: last backup, result, generations, age, next run, findings."""
    config = load()
    ctx = context(config)
    try:
        rows = status_action.status(ctx)
    except BackupctlError as exc:
        die(exc)
    if as_json:
        emit_json({"command": "status", "generated_at": time.time(),
                   "jobs": [r.to_dict() for r in rows]})
        return
    table = Table("job", "host", "last backup", "result", "age", "generations", "next",
                  "findings")
    for r in rows:
        table.add_row(r.job, r.host, r.last_backup_at or "never", r.last_backup_status or "-",
                      _age(r.age_seconds), str(r.generations or "-"), r.next_backup or "-",
                      "; ".join(r.findings) or "ok")
    out.print(table)
