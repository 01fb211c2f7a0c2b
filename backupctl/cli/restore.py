"""Command of the recovery capability: `restore JOB --to TARGET` (SPEC §11, the worst day)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from backupctl.actions import repo as repos
from backupctl.actions.context import manual_operator
from backupctl.actions.recovery import plan as plans
from backupctl.actions.recovery import run as recovery
from backupctl.actions.recovery import target as targets
from backupctl.actions.results import JobResult, RunResult
from backupctl.cli.common import (
    DryOpt,
    JobArg,
    JsonOpt,
    context,
    err,
    interactive,
    load,
    one,
    report,
    show_plans,
)
from backupctl.databases.onto import DEFAULT_DSN
from backupctl.execute import StdoutSink
from backupctl.state.recovery import RecoveryDetails

app = typer.Typer()
log = logging.getLogger("backupctl.restore")


class TerminalUI:
    """A terminal: lines on stderr and a progress bar fed by restic's --json status lines."""

    def __init__(self, *, progress: bool) -> None:
        self.progress = progress

    def info(self, text: str) -> None:
        err.print(f"   {text}", markup=False)

    @contextlib.contextmanager
    def restoring(self, total_bytes: int, total_files: int) -> Iterator[StdoutSink | None]:
        if not self.progress:
            yield None
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        with Progress(TextColumn("   restoring {task.fields[files]}"), BarColumn(),
                      DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("restore", total=max(total_bytes, 1),
                                files=f"0/{total_files} files")
            yield StatusLines(lambda done, files: bar.update(
                task, completed=min(done, total_bytes), files=f"{files}/{total_files} files"))


class StatusLines:
    """restic's `--json` status lines (restic >= 0.16 prints them for restore; 0.14 prints
    none and the bar shows the restore only when it ends) → (bytes done, files done)."""

    def __init__(self, update: Any) -> None:
        self.update = update
        self.rest = b""

    def __call__(self, chunk: bytes) -> None:
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            if not line.startswith(b"{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if obj.get("message_type") in ("status", "summary"):
                self.update(int(obj.get("bytes_restored") or 0),
                            int(obj.get("files_restored") or 0))


class QuietUI:
    """systemd, cron, --json: log lines only."""

    def __init__(self, *, job: str) -> None:
        self.job = job

    def info(self, text: str) -> None:
        log.info("%s: %s", self.job, text)

    def restoring(self, total_bytes: int, total_files: int,
                  ) -> contextlib.nullcontext[StdoutSink | None]:
        return contextlib.nullcontext(None)


def _text(result: JobResult) -> str:
    if not isinstance(result, RunResult) or not isinstance(result.details, RecoveryDetails):
        return ""
    d = result.details
    rto = f" in {d.restore_ms / 1000:.1f}s" if d.restore_ms is not None else ""
    return (f"recovery {d.result} by {d.operator}: snapshot {(result.snapshot_id or '?')[:8]} "
            f"onto {d.target}{rto}: {d.files} file(s), {d.bytes} bytes, {d.directories} "
            f"director(ies), {d.symlinks} symlink(s); {d.files_checked} file(s) hashed "
            f"against the source manifest, {len(d.mismatches)} difference(s), "
            f"{d.owners_mapped} owner(s) mapped by name"
            + "".join(f"; database {p.name} → {p.name}_restored: {p.result.replace('_', ' ')}"
                      for p in d.databases))


@app.command()
def restore(
        job: JobArg,
        to: Annotated[str, typer.Option(
            "--to", help="where: local:/ABS/DIR or ssh://[USER@]HOST[:PORT]/ABS/DIR",
            show_default=False)],
        snapshot: Annotated[str, typer.Option(
            "--snapshot", help="proven (the newest snapshot a full verify passed), latest, "
            "or an id")] = plans.PROVEN,
        source: Annotated[str, typer.Option(
            "--from", help="the repository to read: primary or one of the job's copies (the "
            "primary is gone or encrypted: its offline or immutable copy)")] = "primary",
        path: Annotated[list[str] | None, typer.Option(
            "--path", help="bring back only this path of the snapshot (repeatable)")] = None,
        databases: Annotated[bool, typer.Option(
            "--databases", help="also restore each database dump into the target's "
            "PostgreSQL as a new <name>_restored (refused when it exists) and prove it")]
        = False,
        target_dsn: Annotated[str, typer.Option(
            "--target-dsn", help="libpq key=value connection string of the target's "
            "PostgreSQL as seen on the target (no password: ~/.pgpass there); its role "
            "needs CREATEDB")] = DEFAULT_DSN,
        overwrite: Annotated[bool, typer.Option(
            "--overwrite", help="write into a non-empty directory, or over the job's own "
            "source")] = False,
        identity: Annotated[Path | None, typer.Option(
            "--identity", help="SSH key for the target (default: the job's identity_file)")]
        = None,
        operator: Annotated[str | None, typer.Option(
            "--operator", help="who performs the recovery (recorded as evidence)")] = None,
        dry_run: DryOpt = False, as_json: JsonOpt = False) -> None:
    """Bring a job's data back onto a replacement server and prove it there."""
    config = load()
    selected = one(config, job)
    request = plans.Request(targets.parse(to), snapshot=snapshot, paths=tuple(path or ()),
                            overwrite=overwrite, identity=identity, databases=databases,
                            target_dsn=target_dsn, source=source)
    plans.check_request(request, job=job)
    repos.check_name(selected, source)
    if dry_run:
        show_plans("restore", {job: plans.describe(selected, request)}, as_json=as_json)
        return
    name = operator or os.environ.get("BACKUPCTL_OPERATOR", "").strip() or None
    ctx = context(config, operator=manual_operator(name))
    ui: recovery.RecoveryUI = (TerminalUI(progress=True) if interactive() and not as_json
                               else QuietUI(job=job))
    with plans.opened(ctx, selected, request) as (prepared, runner):
        ui.info(f"snapshot {prepared.snap.short_id} of {prepared.snap.time} ({snapshot}) → "
                f"{prepared.target.display()}")
        result = recovery.recover(ctx, selected, prepared, runner, ui)
    report("restore", [result], as_json=as_json, text=_text)
