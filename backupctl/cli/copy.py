"""Commands of the copy capability: copy, canary init, media init, clear.

The actions are imported inside each command: every `backupctl` start imports all command
modules, and a scheduled verify should not pay for the copy machinery."""

from __future__ import annotations

from typing import Annotated

import typer

from backupctl.actions.outcome import JobResult
from backupctl.cli.app import (
    app,
    context,
    die,
    emit_json,
    err,
    exit_with,
    load,
    run_each,
    select,
    show_plans,
)
from backupctl.config.schema import Job
from backupctl.config.validate import Config
from backupctl.errors import BackupctlError
from backupctl.status import ExitStatus

__all__ = ["app"]

JobsArg = Annotated[list[str] | None, typer.Argument(help="job names", show_default=False)]
AllOpt = Annotated[bool, typer.Option("--all", help="every job in jobs_dir")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="print the plan, run nothing")]

canary_app = typer.Typer(no_args_is_help=True, help="Ransomware canary files.")
media_app = typer.Typer(no_args_is_help=True, help="Offline media labels.")
app.add_typer(canary_app, name="canary")
app.add_typer(media_app, name="media")


def _copy_line(outcome: JobResult) -> str:
    from backupctl.actions.copy import CopyResult

    if not isinstance(outcome, CopyResult):
        return ""
    if not outcome.copies:
        return "no copies declared"
    parts = []
    for c in outcome.copies:
        text = f"{c.copy} {c.status.name if c.status is not ExitStatus.OK else 'ok'}"
        if c.snapshots is not None:
            text += f" ({c.copied} copied, {c.snapshots} held"
            if c.medium and c.medium.get("label"):
                text += f", medium {c.medium['label']}"
            if c.probe is not None:
                text += ", probe " + ("refused: immutable" if c.probe["ok"] else "FAILED")
            text += ")"
        parts.append(text)
    return "; ".join(parts)


def _one(config: Config, job: str) -> Job:
    try:
        return config.select([job], all_jobs=False)[0]
    except BackupctlError as exc:
        die(exc)


@app.command("copy")
def copy_command(jobs: JobsArg = None, all_jobs: AllOpt = False, as_json: JsonOpt = False,
                 dry_run: DryOpt = False) -> None:
    """Copy new snapshots to each offline/immutable copy, prune where allowed, probe."""
    from backupctl.actions import copy as copy_action

    config = load()
    selected = select(config, jobs, all_jobs=all_jobs)
    if dry_run:
        show_plans("copy", {j.name: copy_action.plan(j) for j in selected}, as_json=as_json)
        return
    run_each("copy", config, selected, copy_action.copy, as_json=as_json, text=_copy_line)


@canary_app.command("init")
def canary_init(job: str, as_json: JsonOpt = False) -> None:
    """Write the job's canary files (verify.canaries) on its host and record their hashes."""
    from backupctl.actions import canary as canary_action

    config = load()
    target = _one(config, job)
    ctx = context(config)
    try:
        result = canary_action.init(ctx, target)
    except BackupctlError as exc:
        die(exc)
    if as_json:
        emit_json({"command": "canary init", **result.to_dict()})
        return
    for item in result.canaries:
        err.print(f"{job}: canary {item['path']} armed (sha256 {item['sha256'][:16]}…)",
                  markup=False)


@media_app.command("init")
def media_init(job: str, copy: str, as_json: JsonOpt = False) -> None:
    """Label the medium of an offline copy (a .backupctl-medium.json next to the repository)."""
    from backupctl.actions import media as media_action

    config = load()
    target = _one(config, job)
    ctx = context(config)
    try:
        result = media_action.init(ctx, target, copy)
    except BackupctlError as exc:
        die(exc)
    if as_json:
        emit_json({"command": "media init", **result.to_dict()})
        return
    verb = "labelled" if result.created else "already labelled"
    err.print(f"{job}: {copy}: medium {verb} {result.label} (filesystem UUID "
              f"{result.fs_uuid or 'unknown'}; {result.label_file}). Write the label on the "
              "disk.", markup=False)


@app.command()
def clear(job: str,
          operator: Annotated[str, typer.Option("--operator", help="who clears it")],
          reason: Annotated[str, typer.Option("--reason", help="why it is safe")],
          as_json: JsonOpt = False) -> None:
    """Lift a ransomware tripwire (recorded as a run of kind clear, with evidence)."""
    from backupctl.actions import tripwire

    config = load()
    target = _one(config, job)
    ctx = context(config, operator=operator)
    try:
        result = tripwire.clear(ctx, target, operator=operator, reason=reason)
    except BackupctlError as exc:
        die(exc)
    if as_json:
        emit_json({"command": "clear", **result.to_dict()})
    elif result.cleared:
        err.print(f"{job}: tripwire cleared by {operator} ({len(result.cleared)} flag(s)); "
                  "pruning resumes with the next backup. If a canary was hit, re-arm it: "
                  f"backupctl canary init {job}", markup=False)
    else:
        err.print(f"{job}: no raised tripwire; nothing to clear", markup=False)
    exit_with(result.status)
