"""Commands about jobs: validate, init, trust, backup, status."""

from __future__ import annotations

import time
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any

import typer

from backupctl import fmt
from backupctl.actions import backup as backup_action
from backupctl.actions.results import JobResult, RunResult
from backupctl.cli.common import (
    AllOpt,
    DryOpt,
    DueOpt,
    JobArg,
    JobsArg,
    JsonOpt,
    context,
    emit_json,
    exit_with,
    load,
    one,
    out,
    run_each,
    say,
    say_invalid,
    select,
    show_plans,
)
from backupctl.config.values import format_duration
from backupctl.errors import UsageError
from backupctl.signing import load_public
from backupctl.state.records import BackupDetails
from backupctl.status import ExitStatus
from backupctl.verify.freshness import warnings

app = typer.Typer()


@app.command()
def validate(strict: Annotated[bool, typer.Option(
        "--strict", help="also enforce the guideline: an offline/immutable copy and at least "
        "2 generations")] = False) -> None:
    """Check the configuration and every job file; errors as FILE:LINE: key: message."""
    config = load(strict=strict, whole=True)
    now = datetime.now(UTC)  # proof freshness: the schedules' runs from now on
    for job_file in sorted(config.jobs.values(), key=lambda f: f.job.name):
        for loc, message in warnings(job_file.job, base=now):
            say(str(job_file.document.problem(loc, message)))
    say(f"{config.path}: OK, {len(config.jobs)} job(s): {', '.join(sorted(config.jobs))}")


def proven_within(proof: dict[str, Any], *, tz: tzinfo) -> str:
    """`status`'s line on proof freshness (verify.prove_within)."""
    window = format_duration(proof["window_seconds"])
    oldest = (f", oldest proof {fmt.local(proof['oldest_proof'], tz)}"
              if proof["oldest_proof"] else "")
    waiting = (f"; {proof['unproven']} of {proof['files']} file(s) unproven (waiting since "
               f"{fmt.local(proof['waiting_since'], tz)})" if proof["unproven"] else "")
    verdict = "yes" if proof["met"] else "NO"
    return f"proven within {window}: {verdict}, {proof['files']} file(s){oldest}{waiting}"


@app.command()
def init(job: JobArg, copies: Annotated[bool, typer.Option(
        "--copies", help="also create the job's copy repositories")] = False,
         dry_run: DryOpt = False) -> None:
    """Create the job's missing repositories (never done implicitly)."""
    config = load()
    target = one(config, job)
    if dry_run:
        from backupctl.actions.repo import display_url

        urls = [target.repository.orchestrator_url, *(c.url for c in target.copies if copies)]
        for url in urls:
            out.print(f"would create (if missing): restic --repo {display_url(url)} init",
                      markup=False)
        return
    for line in backup_action.init_repository(context(config), target, copies=copies):
        say(f"{job}: {line}")


@app.command()
def trust(job: Annotated[str, typer.Argument(
        help="job name, or a recovery TARGET ssh://[USER@]HOST[:PORT]/DIR")],
          fingerprint: Annotated[str | None, typer.Option(
        "--fingerprint", help="the SHA256:… fingerprint you expect (checked, not trusted "
        "blindly)")] = None,
          yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Show an SSH host key fingerprint (the job's host, or a replacement server given as
    TARGET) and add it to known_hosts."""
    from backupctl.execute import hostkeys  # paramiko: only the SSH commands pay its import

    config = load()
    if job.startswith(("ssh://", "local:")):
        from backupctl.actions.recovery.target import parse

        where = parse(job)
        if where.is_local:
            raise UsageError(f"{job}: a local target has no host key to trust")
        address, port, user = where.host, where.port, where.user
    else:
        target = one(config, job)
        if target.host.is_local:
            raise UsageError(f"{job}: host is local; there is no host key to trust")
        address, port, user = target.host.address, target.host.port, target.host.user
    known_hosts = config.settings.known_hosts
    offered = hostkeys.fetch(address, port, user=user)
    say(f"{job}: {offered.host} offers {offered.type} {offered.fingerprint}")
    old = hostkeys.current(known_hosts, offered.name, offered.type)
    if old is not None and old == offered.key:
        say(f"{job}: already trusted in {known_hosts} (as {offered.name})")
        return
    if old is not None:
        say(f"{job}: WARNING: this REPLACES the key of {offered.name} in {known_hosts} "
            f"({hostkeys.fingerprint(old)})")
    if fingerprint is None and not yes and not _confirmed(job):
        say(f"{job}: nothing was trusted")
        exit_with(ExitStatus.FAILED)
    hostkeys.add(known_hosts, offered, expected=fingerprint)
    say(f"{job}: trusted {offered.fingerprint} in {known_hosts} (as {offered.name})")


def _confirmed(job: str) -> bool:
    """The admin's answer; none possible (no terminal: systemd, cron, `ssh` without -t) is a
    usage error naming --fingerprint, not click's bare `Aborted.`."""
    try:
        return typer.confirm("Is this the fingerprint shown on the server's console "
                             "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub)?", err=True)
    except typer.Abort:
        raise UsageError(f"{job}: no terminal to confirm: pass --fingerprint SHA256:… (shown "
                         "above) once it matches the server's console; nothing was "
                         "trusted") from None


def _backup_line(result: JobResult) -> str:
    if not isinstance(result, RunResult) or not isinstance(result.details, BackupDetails) \
            or result.snapshot_id is None:
        return ""
    d = result.details
    if d.removed_snapshots:  # a failed run: what it made is gone again
        return f"snapshot {result.snapshot_id} of this failed run was removed"
    kept = f", {d.generations} generation(s) kept" if d.generations is not None else ""
    line = (f"snapshot {result.snapshot_id}, {d.files_new} new / {d.files_changed} changed "
            f"files, {d.bytes_added} bytes added{kept}")
    for db in d.databases:
        line += (f"\n    database {db.name}: FAILED, no snapshot kept" if db.error else
                 f"\n    database {db.name}: snapshot {(db.snapshot_id or '')[:8]}, "
                 f"{db.tables} table(s), {db.rows} row(s), {fmt.size(db.size or 0)}")
    return line


@app.command()
def backup(jobs: JobsArg = None, all_jobs: AllOpt = False, as_json: JsonOpt = False,
           dry_run: DryOpt = False, due: DueOpt = False) -> None:
    """Back up jobs: before → restic backup → after → forget --prune."""
    config = load()
    selected = select(config, jobs, all_jobs=all_jobs)
    if dry_run:
        show_plans("backup", {j.name: backup_action.plan(j) for j in selected}, as_json=as_json,
                   invalid=config.invalid)
        return
    run_each("backup", config, selected, backup_action.backup, as_json=as_json,
             text=_backup_line, due=due, all_jobs=all_jobs, named=jobs or [])


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Per job: last backup, result, generations, age, next run, findings; with several
    orchestrators also who ran the last backup and who runs the job now."""
    # fleet, status's readers of copies, media and probes, the table: only `status` pays them
    from rich.table import Table

    from backupctl.actions import fleet
    from backupctl.actions import status as status_action

    config = load()
    ctx = context(config)
    rows = fleet.annotate(ctx, status_action.status(ctx))
    key = load_public(config.settings.evidence_key)
    if as_json:
        emit_json({"command": "status", "generated_at": time.time(),
                   "orchestrator": ctx.store.orchestrator,
                   "evidence_key": key.fingerprint if key else None,
                   "jobs": [r.to_dict() for r in rows],
                   "invalid_job_files": [f.to_dict() for f in config.invalid]})
        say_invalid(config.invalid)
        if config.invalid:
            exit_with(ExitStatus.USAGE)
        return
    shared = ctx.job_locks.global_scope  # several orchestrators: show who did what
    tz, now = config.settings.tz, ctx.clock()
    table = Table("job", "host", "last backup", "result", "last success", "generations",
                  "next", *(["running"] if shared else []), "findings",
                  caption=f"times in {fmt.zone_label(tz, now)}")
    for r in rows:
        last = fmt.local(r.last_backup_at, tz) if r.last_backup_at else "never"
        if shared and r.last_backup_orchestrator:
            last += f" on {r.last_backup_orchestrator}"
        running = ([f"on {r.running['orchestrator']} ({r.running['kind']} since "
                    f"{fmt.local(r.running['since'], tz)})" if r.running else "-"]
                   if shared else [])
        table.add_row(r.job, r.host, last, r.last_backup_status or "-",
                      fmt.ago(r.age_seconds), str(r.generations or "-"),
                      fmt.local_ago(r.next_backup, now=now, tz=tz) if r.next_backup else "-",
                      *running, "; ".join(r.findings) or "ok")
    for bad in config.invalid:  # a broken job file spoils only itself: shown, never hidden
        table.add_row(bad.label, "-", "-", "INVALID JOB FILE", "-", "-", "-",
                      *(["-"] if shared else []),
                      f"invalid job file {bad.path}: not run until fixed (backupctl validate)")
    out.print(table)
    for r in rows:
        if (done := r.last_recovery) is not None:
            took = (f" in {fmt.duration(done['restore_ms'] / 1000)}"
                    if done["restore_ms"] is not None else "")
            say(f"{r.job}: last recovery {fmt.local(done['at'], tz)} onto {done['target']} "
                f"from snapshot {(done['snapshot_id'] or '?')[:8]} by {done['operator']}: "
                f"{done['status']}{took}")
    for r in rows:
        if r.proof is not None:
            say(f"{r.job}: {proven_within(r.proof, tz=tz)}")
    if key is None:
        say("evidence records are NOT signed: create the evidence key with "
            "`backupctl evidence init-key` (docs/audit.md)")
    say_invalid(config.invalid)
    if config.invalid:
        exit_with(ExitStatus.USAGE)
