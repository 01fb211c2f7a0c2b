"""Commands of the copy capability: copy, canary init, media init, clear.

The actions are imported inside each command: every `backupctl` start imports all command
modules, and a scheduled verify should not pay for the copy machinery."""

from __future__ import annotations

from typing import Annotated

import typer

from backupctl.actions.results import JobResult
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
    run_each,
    say,
    select,
    show_plans,
)
from backupctl.status import ExitStatus

app = typer.Typer()
canary_app = typer.Typer(no_args_is_help=True, help="Ransomware canary files.")
media_app = typer.Typer(no_args_is_help=True, help="Offline media labels.")
app.add_typer(canary_app, name="canary")
app.add_typer(media_app, name="media")


def _copy_line(result: JobResult) -> str:
    from backupctl.actions.copy import CopyResult

    if not isinstance(result, CopyResult):
        return ""
    if not result.copies:
        return "no copies declared"
    parts = []
    for c in result.copies:
        d = c.copy.details
        text = f"{c.name} {c.status.name if c.status is not ExitStatus.OK else 'ok'}"
        if d.snapshots is not None:
            text += f" ({d.copied} copied, {d.snapshots} snapshot(s) in the copy"
            if d.medium and d.medium.label:
                text += f", medium {d.medium.label}"
            if c.probe is not None:
                text += ", probe " + ("refused: immutable" if c.probe.details.ok else "FAILED")
            text += ")"
        parts.append(text)
    return "; ".join(parts)


@app.command("copy")
def copy_command(jobs: JobsArg = None, all_jobs: AllOpt = False, as_json: JsonOpt = False,
                 dry_run: DryOpt = False, due: DueOpt = False) -> None:
    """Copy new snapshots to each offline/immutable copy, prune where allowed, probe."""
    from backupctl.actions import copy as copy_action

    config = load()
    selected = select(config, jobs, all_jobs=all_jobs)
    if dry_run:
        show_plans("copy", {j.name: copy_action.plan(j) for j in selected}, as_json=as_json,
                   invalid=config.invalid)
        return
    run_each("copy", config, selected, copy_action.copy, as_json=as_json, text=_copy_line,
             due=due, all_jobs=all_jobs, named=jobs or [])


@canary_app.command("init")
def canary_init(job: JobArg, as_json: JsonOpt = False) -> None:
    """Write the job's canary files (verify.canaries) on its host and record their hashes."""
    from backupctl.actions import canary as canary_action

    config = load()
    target = one(config, job)
    result = canary_action.init(context(config), target)
    if as_json:
        emit_json({"command": "canary init", **result.to_dict()})
        return
    for item in result.canaries:
        say(f"{job}: canary {item['path']} armed (sha256 {item['sha256'][:16]}…)")


@media_app.command("init")
def media_init(job: JobArg, copy: Annotated[str, typer.Argument(help="copy name")],
               as_json: JsonOpt = False) -> None:
    """Label the medium of an offline copy (a .backupctl-medium.json next to the repository)."""
    from backupctl.actions import media as media_action

    config = load()
    target = one(config, job)
    result = media_action.init(context(config), target, copy)
    if as_json:
        emit_json({"command": "media init", **result.to_dict()})
        return
    verb = "labelled" if result.created else "already labelled"
    say(f"{job}: {copy}: medium {verb} {result.label} (filesystem UUID "
        f"{result.fs_uuid or 'unknown'}; {result.label_file}). Write the label on the disk.")


@app.command()
def clear(job: JobArg,
          operator: Annotated[str, typer.Option("--operator", help="who clears it")],
          reason: Annotated[str, typer.Option("--reason", help="why it is safe")],
          as_json: JsonOpt = False) -> None:
    """Lift a ransomware tripwire (recorded as a run of kind clear, with evidence)."""
    from backupctl.actions import tripwire

    config = load()
    target = one(config, job)
    result = tripwire.clear(context(config, operator=operator), target, operator=operator,
                            reason=reason)
    if as_json:
        emit_json({"command": "clear", **result.to_dict()})
    elif result.error:
        say(result.error)
    elif result.details.cleared:
        say(f"{job}: tripwire cleared by {operator} ({len(result.details.cleared)} flag(s)); "
            "pruning resumes with the next backup. If a canary was hit, re-arm it: "
            f"backupctl canary init {job}")
    else:
        say(f"{job}: no raised tripwire; nothing to clear")
    exit_with(result.status)
