"""`backupctl schedule`: systemd timers or a crontab for every job."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from backupctl import fmt, schedule
from backupctl.cli.common import emit_json, load, out, say
from backupctl.config import calendar
from backupctl.config.validate import Config
from backupctl.errors import ConfigError
from backupctl.execute.local import LocalRunner
from backupctl.files import write_atomic

app = typer.Typer()

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
    config = load(whole=True)
    binary = _bin(bin_path)
    files = schedule.plan(config, unit_dir=unit_dir, bin_path=binary,
                          docs=schedule.installed_docs())
    old = schedule.stale(config, unit_dir=unit_dir)
    if dry_run:
        for unit in files:
            out.print(f"# --- {unit.path}", markup=False)
            out.print(unit.text, markup=False, end="")
        for path in old:
            out.print(f"# --- would remove {path} (no longer scheduled)", markup=False)
        out.print("# --- then run (as `schedule install` prints):", markup=False)
        for command in _after_install(config, old):
            out.print(f"#   {command}", markup=False)
        return
    try:
        for unit in files:
            unit.path.parent.mkdir(parents=True, exist_ok=True)
            changed = write_atomic(unit.path, unit.text, mode=0o644, unchanged_ok=True)
            say(f"{'wrote' if changed else 'unchanged'} {unit.path}")
        disable = schedule.remove_stale(old)
    except OSError as exc:
        raise ConfigError([f"{unit_dir}: cannot write units: {exc}"]) from None
    for path in old:
        say(f"removed {path} (no longer scheduled)")
    say("Now run:")
    for command in _after_install(config, old, disable=disable):
        say(f"  {command}")


def _after_install(config: Config, old: list[Path], *,
                   disable: list[str] | None = None) -> list[str]:
    """The systemctl commands to run after writing the units (printed, never run: the
    admin decides when timers start)."""
    if disable is None:  # --dry-run: what removing the stale drop-ins would disable
        disable = [p.parent.name.removesuffix(".d") for p in old
                   if p.name == schedule.SCHEDULE_DROPIN and ".timer.d" in p.parent.name]
    commands = [["systemctl", "disable", "--now", *disable]] if disable else []
    return [shlex.join(c) for c in [*commands, *schedule.enable_commands(config)]]


@schedule_app.command("show")
def schedule_show(
        unit_dir: UnitDirOpt = schedule.DEFAULT_UNIT_DIR,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")]
        = False) -> None:
    """Per job and action: the OnCalendar value, timer, next run and whether it is installed."""
    config = load(whole=True)
    rows = []
    for entry in schedule.entries(config):
        dropin = unit_dir / f"{entry.timer}.d" / schedule.SCHEDULE_DROPIN
        wanted = schedule.timer_dropin(entry, source=config.jobs[entry.job].path)
        try:
            state = "installed" if dropin.read_text(encoding="utf-8") == wanted else "outdated"
        except OSError:
            state = "not installed"
        nxt = calendar.next_elapse(entry.calendar, tz=None)  # as the timer fires
        rows.append({"job": entry.job, "action": entry.action,
                     "command": " ".join(entry.argv), "on_calendar": entry.calendar,
                     "timer": entry.timer, "next": nxt.isoformat() if nxt else None,
                     "state": state})
    if as_json:
        emit_json({"command": "schedule show", "unit_dir": str(unit_dir), "entries": rows})
        return
    tz = config.settings.tz
    for row in rows:
        shown = (f"{fmt.local(row['next'], tz)} ({fmt.zone_label(tz, fmt.moment(row['next']))})"
                 if row["next"] else "-")
        out.print(f"{row['job']:<20} {row['action']:<11} OnCalendar={row['on_calendar']:<24} "
                  f"next {shown:<26} {row['timer']} ({row['state']})", markup=False)


@schedule_app.command("cron")
def schedule_cron(
        bin_path: BinOpt = None,
        user: Annotated[str | None, typer.Option(
            "--user", help="user column for /etc/cron.d (default root); --no-user for "
            "`crontab -e`")] = "root",
        no_user: Annotated[bool, typer.Option("--no-user", help="omit the user column")]
        = False) -> None:
    """Print a crontab (one line per job and action) converted from the OnCalendar values."""
    config = load(whole=True)
    lines, problems = schedule.crontab(config, bin_path=_bin(bin_path),
                                       user=None if no_user else user, runner=LocalRunner())
    if problems:
        messages = []
        for entry, why in problems:
            doc = config.jobs[entry.job].document
            messages.append(str(doc.problem(["schedule", entry.action], why)))
        messages.append("nothing printed: change these schedules, or use the systemd timers "
                        "(backupctl schedule install), which understand every form")
        raise ConfigError(messages)
    sys.stdout.write("\n".join(lines) + "\n")
