"""Commands of the drill capability: `drill`, `runbook`, `schedule` (on the shared typer app)."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from backupctl import schedule
from backupctl.actions import drill as drill_action
from backupctl.actions.context import manual_operator
from backupctl.actions.drill import FAIL, PASS, SKIPPED, DrillResult
from backupctl.actions.outcome import JobResult
from backupctl.actions.repo import PRIMARY
from backupctl.cli.app import (
    app,
    context,
    die,
    emit_json,
    err,
    interactive,
    load,
    out,
    report,
)
from backupctl.config import calendar
from backupctl.errors import BackupctlError, ConfigError, UsageError
from backupctl.execute.local import LocalRunner

schedule_app = typer.Typer(no_args_is_help=True, help="systemd timers or cron for every job.")
app.add_typer(schedule_app, name="schedule")

UnitDirOpt = Annotated[Path, typer.Option(
    "--unit-dir", help="where systemd units go", show_default=True)]
BinOpt = Annotated[str | None, typer.Option(
    "--bin", help="the backupctl executable the units/crontab run "
    f"(default: the one on PATH, else {schedule.DEFAULT_BIN})")]


def _bin(option: str | None) -> str:
    if option:
        return str(Path(option).absolute())
    if Path(sys.argv[0]).name == "backupctl":
        return str(Path(sys.argv[0]).absolute())
    found = shutil.which("backupctl")
    return str(Path(found).absolute()) if found else schedule.DEFAULT_BIN


@schedule_app.command("install")
def schedule_install(
        dry_run: Annotated[bool, typer.Option("--dry-run", help="print the files, write "
                                              "nothing")] = False,
        unit_dir: UnitDirOpt = schedule.DEFAULT_UNIT_DIR,
        bin_path: BinOpt = None) -> None:
    """Write the systemd template units and each job's timer/service drop-ins."""
    config = load()
    binary = _bin(bin_path)
    files = schedule.plan(config, unit_dir=unit_dir, bin_path=binary)
    old = schedule.stale(config, unit_dir=unit_dir)
    if dry_run:
        for unit in files:
            out.print(f"# --- {unit.path}", markup=False)
            out.print(unit.text, markup=False, end="")
        for path in old:
            out.print(f"# --- would remove {path} (no longer scheduled)", markup=False)
        return
    try:
        for unit in files:
            changed = schedule.write_atomic(unit.path, unit.text)
            err.print(f"{'wrote' if changed else 'unchanged'} {unit.path}", markup=False)
        disable = schedule.remove_stale(old)
    except OSError as exc:
        die(ConfigError([f"{unit_dir}: cannot write units: {exc}"]))
    for path in old:
        err.print(f"removed {path} (no longer scheduled)", markup=False)
    err.print("Now run:", markup=False)
    if disable:
        err.print("  " + shlex.join(["systemctl", "disable", "--now", *disable]), markup=False)
    for command in schedule.enable_commands(config):
        err.print("  " + shlex.join(command), markup=False)


@schedule_app.command("show")
def schedule_show(
        unit_dir: UnitDirOpt = schedule.DEFAULT_UNIT_DIR,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")]
        = False) -> None:
    """Per job and action: the OnCalendar value, timer, next run and whether it is installed."""
    config = load()
    rows = []
    for entry in schedule.entries(config):
        dropin = unit_dir / f"{entry.timer}.d" / schedule.SCHEDULE_DROPIN
        wanted = schedule.timer_dropin(entry, source=config.jobs[entry.job].path)
        try:
            state = "installed" if dropin.read_text(encoding="utf-8") == wanted else "outdated"
        except OSError:
            state = "not installed"
        nxt = calendar.next_elapse(entry.calendar)
        rows.append({"job": entry.job, "action": entry.action, "on_calendar": entry.calendar,
                     "timer": entry.timer, "next": nxt.isoformat() if nxt else None,
                     "state": state})
    if as_json:
        emit_json({"command": "schedule show", "unit_dir": str(unit_dir), "entries": rows})
        return
    for row in rows:
        out.print(f"{row['job']:<20} {row['action']:<7} OnCalendar={row['on_calendar']:<24} "
                  f"next {row['next'] or '-':<26} {row['timer']} ({row['state']})",
                  markup=False)


@schedule_app.command("cron")
def schedule_cron(
        bin_path: BinOpt = None,
        user: Annotated[str | None, typer.Option(
            "--user", help="user column for /etc/cron.d (default root); --no-user for "
            "`crontab -e`")] = "root",
        no_user: Annotated[bool, typer.Option("--no-user", help="omit the user column")]
        = False) -> None:
    """Print a crontab (one line per job and action) converted from the OnCalendar values."""
    config = load()
    lines, problems = schedule.crontab(config, bin_path=_bin(bin_path),
                                       user=None if no_user else user, runner=LocalRunner())
    if problems:
        messages = []
        for entry, why in problems:
            doc = config.jobs[entry.job].document
            messages.append(str(doc.problem(["schedule", entry.action], why)))
        messages.append("nothing printed: change these schedules, or use the systemd timers "
                        "(backupctl schedule install), which understand every form")
        die(ConfigError(messages))
    sys.stdout.write("\n".join(lines) + "\n")


@app.command()
def runbook(
        job: Annotated[str, typer.Argument(help="job name")],
        lang: Annotated[str, typer.Option("--lang", help="ja (復旧手順書) or en")] = "ja",
        fmt: Annotated[str, typer.Option("--format", help="md or html")] = "md",
        output: Annotated[Path | None, typer.Option(
            "-o", "--output", help="write to FILE instead of stdout")] = None) -> None:
    """The job's recovery runbook (復旧手順書): where, how, how long, whom to call."""
    from backupctl import runbook as runbook_doc  # Jinja2: imported by this command only

    if lang not in runbook_doc.LANGS or fmt not in runbook_doc.FORMATS:
        die(ConfigError([f"--lang must be one of {', '.join(runbook_doc.LANGS)} and --format "
                         f"one of {', '.join(runbook_doc.FORMATS)}"]))
    config = load()
    try:
        target = config.select([job], all_jobs=False)[0]
        text = runbook_doc.runbook(context(config), target, lang=lang, fmt=fmt)
    except BackupctlError as exc:
        die(exc)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        schedule.write_atomic(output, text, mode=0o640)
    except OSError as exc:
        die(BackupctlError(f"cannot write {output}: {exc}"))
    err.print(f"{job}: runbook written to {output}", markup=False)


# -- drill ---------------------------------------------------------------------------------

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


def _drill_text(outcome: JobResult) -> str:
    if not isinstance(outcome, DrillResult):
        return ""
    rows = [f"{s.seconds:8.1f}s  {s.result:<7} {s.name}" for s in outcome.steps]
    for row in rows:
        err.print(f"   {row}", markup=False)
    restore = (f", restore {outcome.restore_seconds:.1f}s"
               if outcome.restore_seconds is not None else "")
    manual = "" if outcome.manual_steps_confirmed or not outcome.steps else (
        ", manual steps NOT all confirmed")
    return (f"drill {outcome.result} by {outcome.operator} on snapshot "
            f"{(outcome.snapshot_id or '?')[:8]}{restore}, {outcome.files_checked} file(s) "
            f"hashed, {len(outcome.mismatches)} mismatch(es){manual}")


def _no_answers_possible() -> bool:
    """stdin is /dev/null or closed (as under systemd and cron): no prompt can be answered."""
    try:
        stdin, null = os.fstat(0), os.stat(os.devnull)
    except OSError:
        return True
    return (stdin.st_dev, stdin.st_ino) == (null.st_dev, null.st_ino)


@app.command()
def drill(
        job: Annotated[str, typer.Argument(help="job name")],
        operator: Annotated[str | None, typer.Option(
            "--operator", help="who performs the drill (recorded as evidence)")] = None,
        target: Annotated[Path | None, typer.Option(
            "--target", help="restore into this real, new or empty directory (asks first; "
            "kept afterwards). Default: a 0700 scratch directory, wiped afterwards")] = None,
        snapshot: Annotated[str, typer.Option("--snapshot", help="snapshot id or latest")]
        = "latest",
        source: Annotated[str, typer.Option("--from", help="repository: primary or a copy "
                                            "name")] = PRIMARY,
        yes: Annotated[bool, typer.Option(
            "--yes", help="non-interactive (tests, CI): no questions, manual steps are "
            "recorded as not performed")] = False,
        remarks: Annotated[str | None, typer.Option(
            "--remarks", help="remarks recorded with the drill")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")]
        = False) -> None:
    """Restore drill, step by step: restore, verify, checks, manual steps; timed, recorded."""
    config = load()
    try:
        selected = config.select([job], all_jobs=False)[0]
    except BackupctlError as exc:
        die(exc)
    if not yes and _no_answers_possible():
        die(UsageError(f"{job}: the drill asks the operator questions but stdin is /dev/null "
                       "(systemd, cron); use --yes (manual steps are then recorded as not "
                       "performed)"))
    name = operator or os.environ.get("BACKUPCTL_OPERATOR", "").strip() or None
    if name is None and not yes and sys.stdin.isatty():
        name = typer.prompt("実施者 Operator", default=manual_operator(None), err=True)
    ctx = context(config, operator=manual_operator(name))
    ui: drill_action.DrillUI = (UnattendedUI(job=job, remarks=remarks) if yes
                                else TerminalUI(progress=interactive(), remarks=remarks))
    try:
        result = drill_action.drill(ctx, selected, ui, target=target, snapshot=snapshot,
                                    source=source)
    except typer.Abort:
        kept = f"; data restored so far is kept in {target}" if target else (
            "; scratch data was wiped")
        err.print(f"{job}: drill aborted and recorded as aborted{kept} (use --yes for a "
                  "non-interactive drill)", markup=False)
        raise typer.Exit(1) from None
    except BackupctlError as exc:
        die(exc)
    report("drill", [result], as_json=as_json, text=_drill_text)


__all__ = ["app"]
