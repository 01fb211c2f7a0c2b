"""Commands of the drill capability: `drill` and `runbook`."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from backupctl import execute
from backupctl.actions import drill as drill_action
from backupctl.actions import repo as repos
from backupctl.actions.context import Context, manual_operator
from backupctl.actions.drill import FAIL, PASS, SKIPPED
from backupctl.actions.recovery import plan as plans
from backupctl.actions.recovery import target as targets
from backupctl.actions.results import JobResult, RunResult
from backupctl.cli.common import (
    JsonOpt,
    context,
    err,
    interactive,
    load,
    one,
    output_file,
    report,
    say,
)
from backupctl.config.schema import Job
from backupctl.databases.onto import DEFAULT_DSN
from backupctl.errors import ConfigError, UsageError
from backupctl.files import write_atomic
from backupctl.fmt import LANGS
from backupctl.state.records import DrillDetails

app = typer.Typer()


@app.command()
def runbook(
        job: Annotated[str, typer.Argument(help="job name")],
        lang: Annotated[str, typer.Option("--lang", help="ja (復旧手順書) or en")] = "ja",
        fmt: Annotated[str, typer.Option("--format", help="md or html")] = "md",
        output: Annotated[Path | None, typer.Option(
            "-o", "--output", help="write to FILE instead of stdout")] = None) -> None:
    """The job's recovery runbook (復旧手順書): where, how, how long, whom to call."""
    from backupctl import runbook as runbook_doc  # Jinja2: imported by this command only

    if lang not in LANGS or fmt not in runbook_doc.FORMATS:
        raise ConfigError([f"--lang must be one of {', '.join(LANGS)} and --format "
                           f"one of {', '.join(runbook_doc.FORMATS)}"])
    if output is not None:
        output_file(output)
    config = load()
    target = one(config, job)
    text = runbook_doc.runbook(config, context(config).store, target, lang=lang, fmt=fmt)
    if output is None:
        sys.stdout.write(text)
        return
    write_atomic(output, text, mode=0o640)
    say(f"{job}: runbook written to {output}")


log = logging.getLogger("backupctl.drill")


class TerminalUI:
    """The drill on a terminal: numbered steps, a restore progress bar, y/n/s questions."""

    def __init__(self, *, progress: bool, remarks: str | None) -> None:
        self.progress = progress
        self.preset_remarks = remarks

    def step(self, number: int, title: str) -> None:
        err.print(f"\n== Step {number}: {title}", markup=False)

    def info(self, text: str) -> None:
        err.print(f"   {text}", markup=False)

    def confirm_target(self, target: Path) -> bool:
        err.print(f"The drill will restore into the REAL directory {target} (kept afterwards, "
                  "not wiped).", markup=False)
        return typer.confirm(f"本番の復元先 {target} に復元しますか？ Restore into {target}?",
                             default=False, err=True)

    @contextlib.contextmanager
    def restoring(self, target: Path, total_bytes: int) -> Iterator[None]:
        if not self.progress:
            yield
            return
        free_before = shutil.disk_usage(target).free
        stop = threading.Event()
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(TextColumn("   restoring"), BarColumn(), DownloadColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as bar:
            task = bar.add_task("restore", total=max(total_bytes, 1))

            def poll() -> None:  # bytes written ≈ free space used on the target's disk
                while not stop.wait(0.5):
                    used = free_before - shutil.disk_usage(target).free
                    bar.update(task, completed=min(max(used, 0), total_bytes))

            watcher = threading.Thread(target=poll, daemon=True)
            watcher.start()
            try:
                yield
            finally:
                stop.set()
                watcher.join()

    def manual(self, index: int, total: int, text: str) -> tuple[str, str]:
        err.print(f"   [{index}/{total}] {text}", markup=False)
        answer = ""
        while answer not in ("y", "n", "s"):
            answer = str(typer.prompt("   完了しましたか？ Done? (y = done / n = failed / "
                                      "s = skip)", err=True)).strip().lower()
        remark = typer.prompt("   備考 Remark (Enter for none)", default="",
                              show_default=False, err=True)
        return {"y": PASS, "n": FAIL, "s": SKIPPED}[answer], remark.strip()

    def remarks(self) -> str:
        if self.preset_remarks is not None:
            return self.preset_remarks
        answer: str = typer.prompt("\n全体の所見 Remarks for the record (Enter for none)",
                                   default="", show_default=False, err=True)
        return answer.strip()


class UnattendedUI:
    """--yes: no questions; journald-friendly log lines; manual steps are not performed."""

    def __init__(self, *, job: str, remarks: str | None) -> None:
        self.job = job
        self.preset_remarks = remarks

    def step(self, number: int, title: str) -> None:
        log.info("%s: step %d: %s", self.job, number, title)

    def info(self, text: str) -> None:
        log.info("%s:   %s", self.job, text)

    def confirm_target(self, target: Path) -> bool:
        return True  # --yes is the explicit confirmation

    def restoring(self, target: Path, total_bytes: int) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def manual(self, index: int, total: int, text: str) -> tuple[str, str]:
        log.warning("%s: manual step %d/%d not performed (--yes): %s", self.job, index, total,
                    text)
        return SKIPPED, "not performed: non-interactive drill (--yes)"

    def remarks(self) -> str:
        return self.preset_remarks or ""


def _drill_text(result: JobResult) -> str:
    if not isinstance(result, RunResult) or not isinstance(result.details, DrillDetails):
        return ""
    d = result.details
    for s in d.steps:
        say(f"   {s.duration_ms / 1000:8.1f}s  {s.result:<7} {s.name}")
    restore = f", restore {d.restore_ms / 1000:.1f}s" if d.restore_ms is not None else ""
    manual = "" if d.manual_steps_confirmed or not d.steps else (
        ", manual steps NOT all confirmed")
    return (f"drill {d.result} by {d.operator} on snapshot "
            f"{(result.snapshot_id or '?')[:8]}{restore}, {d.files_checked} file(s) "
            f"hashed, {len(d.mismatches)} mismatch(es){manual}")


def _no_answers_possible() -> bool:
    """stdin is /dev/null or closed (as under systemd and cron): no prompt can be answered."""
    try:
        stdin, null = os.fstat(0), os.stat(os.devnull)
    except OSError:
        return True
    return (stdin.st_dev, stdin.st_ino) == (null.st_dev, null.st_ino)


def _onto(to: str | None, *, job: str, target: Path | None, source: str,
          snapshot: str | None, identity: Path | None, databases: bool,
          target_dsn: str) -> plans.Request | None:
    """drill --to: the recovery's request (TARGET parsed strictly: exit 2, nothing run)."""
    if to is None:
        if identity is not None or databases or target_dsn != DEFAULT_DSN:
            raise UsageError("--identity, --databases and --target-dsn go with --to")
        return None
    if target is not None:
        raise UsageError("--to rehearses the recovery onto a spare server (from the primary "
                         "or --from a copy); it does not go with --target")
    request = plans.Request(targets.parse(to), snapshot=snapshot or plans.PROVEN,
                            identity=identity, databases=databases, target_dsn=target_dsn,
                            source=source)
    plans.check_request(request, job=job)
    return request


def _drill_onto(ctx: Context, job: Job, ui: drill_action.DrillUI,
                request: plans.Request) -> JobResult:
    """The recovery's plan (every refusal exit 2 before anything runs), then the drill."""
    from backupctl.actions.recovery import rehearse

    with plans.opened(ctx, job, request) as (prepared, runner):
        return rehearse.drill_onto(ctx, job, ui, prepared, runner)


@app.command()
def drill(
        job: Annotated[str, typer.Argument(help="job name")],
        operator: Annotated[str | None, typer.Option(
            "--operator", help="who performs the drill (recorded as evidence)")] = None,
        target: Annotated[Path | None, typer.Option(
            "--target", help="restore into this real, new or empty directory (asks first; "
            "kept afterwards). Default: a 0700 scratch directory, wiped afterwards")] = None,
        snapshot: Annotated[str | None, typer.Option(
            "--snapshot", help="snapshot id, latest, or proven (default: latest; with --to "
            "proven, as restore)", show_default=False)] = None,
        source: Annotated[str, typer.Option("--from", help="repository: primary or a copy "
                                            "name")] = repos.PRIMARY,
        yes: Annotated[bool, typer.Option(
            "--yes", help="non-interactive (tests, CI): no questions, manual steps are "
            "recorded as not performed")] = False,
        remarks: Annotated[str | None, typer.Option(
            "--remarks", help="remarks recorded with the drill")] = None,
        to: Annotated[str | None, typer.Option(
            "--to", help="rehearse the recovery onto a spare server: local:/DIR or "
            "ssh://[USER@]HOST[:PORT]/DIR, new or empty (as `restore --to`; kept afterwards)",
            show_default=False)] = None,
        identity: Annotated[Path | None, typer.Option(
            "--identity", help="with --to: SSH key for the target (default: the job's)")]
        = None,
        databases: Annotated[bool, typer.Option(
            "--databases", help="with --to: each dump into the target's PostgreSQL as "
            "<name>_restored (as `restore --databases`)")] = False,
        target_dsn: Annotated[str, typer.Option(
            "--target-dsn", help="with --to --databases: libpq connection string of the "
            "target's PostgreSQL, as seen on the target (no password)")] = DEFAULT_DSN,
        as_json: JsonOpt = False) -> None:
    """Restore drill, step by step: restore, verify, checks, manual steps; timed, recorded."""
    config = load()
    selected = one(config, job)
    onto = _onto(to, job=job, target=target, source=source, snapshot=snapshot,
                 identity=identity, databases=databases, target_dsn=target_dsn)
    if not yes and _no_answers_possible():
        raise UsageError(f"{job}: the drill asks the operator questions but stdin is /dev/null "
                         "(systemd, cron); use --yes (manual steps are then recorded as not "
                         "performed)")
    name = operator or os.environ.get("BACKUPCTL_OPERATOR", "").strip() or None
    if name is None and not yes and sys.stdin.isatty():
        name = typer.prompt("実施者 Operator", default=manual_operator(None), err=True)
    ctx = context(config, operator=manual_operator(name))
    ui: drill_action.DrillUI = (UnattendedUI(job=job, remarks=remarks) if yes
                                else TerminalUI(progress=interactive(), remarks=remarks))
    try:
        if onto is not None:
            result = _drill_onto(ctx, selected, ui, onto)
        else:
            result = drill_action.drill(ctx, selected, ui, target=target,
                                        snapshot=snapshot or "latest", source=source)
    except (typer.Abort, execute.Cancelled):
        where = onto.target.display() if onto is not None else target
        kept = f"; data restored so far is kept in {where}" if where else (
            "; scratch data was wiped")
        say(f"{job}: drill aborted and recorded as aborted{kept} (use --yes for a "
            "non-interactive drill)")
        raise typer.Exit(1) from None
    report("drill", [result], as_json=as_json, text=_drill_text)

