"""What every command module shares: consoles, options, loading, running, reporting.

Command modules import this module (never `cli.main`); none of them catches errors to
print them: a BackupctlError raised anywhere goes up to `cli.main`, the one door that
turns it into one line on stderr and its exit code.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from backupctl import log
from backupctl.actions.context import Context, RunObserver
from backupctl.actions.fleet import Skipped, run_job
from backupctl.actions.results import JobResult, Refused, run_jobs
from backupctl.config.schema import Job
from backupctl.config.validate import Config, InvalidJobFile, config_path, load_config
from backupctl.errors import BackupctlError, ConfigError, UsageError
from backupctl.state.db import Store
from backupctl.state.locks import FileLocks, JobLocks
from backupctl.state.pgconn import is_postgresql
from backupctl.status import ExitStatus

if TYPE_CHECKING:
    from backupctl.state.leases import Lease

# Under systemd/cron/pipes rich would wrap tables at 80 columns; logs read better wide.
err = Console(stderr=True, highlight=False, soft_wrap=True,
              width=None if sys.stderr.isatty() else 200)
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)

JobsArg = Annotated[list[str] | None, typer.Argument(help="job names", show_default=False)]
JobArg = Annotated[str, typer.Argument(help="job name")]
AllOpt = Annotated[bool, typer.Option("--all", help="every job in jobs_dir")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="print the plan, run nothing")]
DueOpt = Annotated[bool, typer.Option(
    "--due", help="only jobs whose schedule fired since their last run on any orchestrator "
    "(what the timers run with several orchestrators); the others are listed, not errors")]


@dataclass
class Options:
    config: Path | None = None
    verbose: bool = False
    loaded: Config | None = None  # the configuration, once loaded (state_dir for error logs)


OPTIONS = Options()


def exit_with(status: ExitStatus) -> NoReturn:
    raise typer.Exit(int(status))


def load(*, strict: bool = False, whole: bool = False) -> Config:
    """The validated configuration; ConfigError (exit 2) lists every problem of the global
    configuration. A broken job file spoils only itself (`Config.invalid`; the command
    reports it and exits 2 at the end) unless `whole`: then any problem is exit 2 before
    anything runs (validate, schedule, reports)."""
    path = config_path(OPTIONS.config)
    if not path.exists():
        raise ConfigError([f"{path}:1: configuration file not found (use -c FILE or "
                           "BACKUPCTL_CONFIG)"])
    OPTIONS.loaded = load_config(path, strict=strict, partial=not whole)
    return OPTIONS.loaded


def select(config: Config, names: list[str] | None, *, all_jobs: bool) -> list[Job]:
    """The valid jobs named on the command line (or --all); an unknown name exits 2. A named
    invalid job file is not among them: `run_each` reports it (exit 2, nothing run for it)."""
    return config.select(names or [], all_jobs=all_jobs)


def one(config: Config, name: str) -> Job:
    """The one job a command is about: its invalid job file is exit 2 with its problems;
    other invalid job files are mentioned and do not stop it."""
    if broken := config.invalid_named([name]):
        raise ConfigError([f"{name}: invalid job file, nothing was run:",
                           *(m for f in broken for m in f.messages())])
    job = config.select([name], all_jobs=False)[0]
    if config.invalid:
        say(f"note: {len(config.invalid)} other job file(s) are invalid and were left out: "
            f"{', '.join(str(f.path) for f in config.invalid)} (backupctl validate)")
    return job


def run_operator() -> str:
    """Who runs this (SPEC §6 `operator`): `scheduler` when a timer or cron started it, else
    the person (their login name; under sudo, the user who ran sudo).

    `BACKUPCTL_OPERATOR` names the operator explicitly: the units and the crontab backupctl
    writes set it to `scheduler`. A unit installed before that is known by systemd's marks
    (this process is the unit's main process). Anything else is a person, even without a
    terminal (over ssh, in a script, output piped): a manual full verify is theirs."""
    from backupctl.actions.context import manual_operator

    named = os.environ.get("BACKUPCTL_OPERATOR", "").strip()
    if named:
        return named
    if "INVOCATION_ID" in os.environ and os.environ.get("SYSTEMD_EXEC_PID") == str(os.getpid()):
        return "scheduler"
    return manual_operator(os.environ.get("SUDO_USER", "").strip() or None)


def context(config: Config, *, operator: str | None = None, due: bool = False) -> Context:
    """The state context of a command (opens, and if needed upgrades, the state database).

    Job locks: PostgreSQL leases shared by every orchestrator when `database_url` is
    PostgreSQL (a lost lease stops that job's run), else flock files in state_dir."""
    settings = config.settings
    state_dir = settings.state_dir
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = stat.S_IMODE(state_dir.stat().st_mode)
    except OSError as exc:
        raise BackupctlError(f"cannot create state_dir {state_dir}: "
                             f"{exc.strerror or exc}") from None
    if mode & 0o077:
        logging.getLogger("backupctl").warning(
            "state_dir %s is readable by group/others (mode %04o): it holds the source "
            "manifests (patient file names and hashes); run chmod 700 %s", state_dir, mode,
            state_dir)
    store = Store(settings.effective_database_url, orchestrator=settings.effective_orchestrator)
    locks: JobLocks = FileLocks(state_dir)
    if is_postgresql(settings.effective_database_url):
        from backupctl.state.leases import PgLeases  # psycopg: SQLite sites never import it

        locks = PgLeases(settings.effective_database_url, store.orchestrator,
                         on_lost=_lease_lost)
    return Context(config=config, store=store, operator=operator or run_operator(),
                   locks=locks, due=due, observers=_observers(config))


def _observers(config: Config) -> list[RunObserver]:
    """Notifications and pings (SPEC §8) when configured (else backupctl.notify and Apprise
    are never imported), then the metrics textfile when textfile_dir is set (after the
    notices, which it shows too)."""
    observers: list[RunObserver] = []
    if (config.settings.notify.channels
            or any(jf.job.notify.ping.configured for jf in config.jobs.values())):
        from backupctl.actions.notify import Notifier

        observers.append(Notifier())
    if config.settings.textfile_dir is not None:
        from backupctl.actions.textfile import TextfileRefresh

        observers.append(TextfileRefresh())
    return observers


def _lease_lost(lease: Lease) -> None:
    """The watchdog lost a job's lease (cut network, ended session): stop that job's run
    before another orchestrator can take the job (it records itself interrupted if the
    database can still be reached; the command exits 1). Other jobs of an `--all` run go
    on: their leases are their own."""
    lease.scope.cancel(f"{lease.job}: {lease.lost_reason or 'lease lost'}; its run was "
                       "stopped so that another orchestrator can take over")


def emit_json(payload: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout (secrets masked as a last line of defence)."""
    text = json.dumps(payload, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write(log.mask(text) + "\n")
    sys.stdout.flush()


def say(text: str) -> None:
    """One line for the operator on stderr (secrets masked)."""
    err.print(log.mask(text), markup=False)


def invalid_results(config: Config, names: Sequence[str]) -> list[Refused]:
    """A result per invalid job file named on the command line: exit 2, nothing run."""
    return [Refused(f.label, ExitStatus.USAGE, f"invalid job file {f.path}: nothing was run",
                    kind="invalid") for f in config.invalid_named(list(names))]


def say_invalid(invalid: Sequence[InvalidJobFile]) -> None:
    """Each invalid job file's problems, FILE:LINE: key: message (stderr)."""
    if invalid:
        say(f"{len(invalid)} invalid job file(s), left out (fix them; `backupctl validate` "
            "lists every error):")
        for line in (m for f in invalid for m in f.messages()):
            say(f"    {line}")


def report(command: str, results: Sequence[JobResult], *, as_json: bool,
           text: Callable[[JobResult], str],
           invalid: Sequence[InvalidJobFile] = ()) -> NoReturn:
    """Render per-job results (text on stderr or one JSON object) and exit with the worst;
    invalid job files make it exit 2 after the valid jobs ran."""
    statuses = [r.status for r in results] + ([ExitStatus.USAGE] if invalid else [])
    # Bad data found by a job that ran is the news (exit 3), even beside an invalid job file
    # (exit 2: that one ran nothing); otherwise the worst as usual.
    status = ExitStatus.BAD_DATA if ExitStatus.BAD_DATA in statuses \
        else ExitStatus.worst(statuses)
    if as_json:
        emit_json({"command": command, "exit_code": int(status),
                   "status": status.name.lower(), "jobs": [r.to_dict() for r in results],
                   "invalid_job_files": [f.to_dict() for f in invalid]})
    else:
        for result in results:
            if isinstance(result, Skipped):  # not due, running elsewhere: not an error
                say(f"[{result.mark}] {result.job}: "
                    f"{result.reason.removeprefix(f'{result.job}: ')}")
                continue
            line = text(result) if result.status is not ExitStatus.USAGE else ""
            mark = "OK" if result.status is ExitStatus.OK else result.status.name
            # Errors already start with the job name; print it once.
            error = (result.error or "").removeprefix(f"{result.job}: ")
            say(f"[{mark}] {result.job}: {line or error}")
            if error and line:
                say(f"    {error}")
    say_invalid(invalid)  # on stderr with --json too: the journal shows what to fix
    exit_with(status)


def show_plans(command: str, plans: dict[str, list[str]], *, as_json: bool,
               invalid: Sequence[InvalidJobFile] = ()) -> None:
    """--dry-run: print each job's plan (secrets already masked by the builders); invalid
    job files are listed and make it exit 2."""
    if as_json:
        emit_json({"command": command, "dry_run": True, "plans": plans,
                   "invalid_job_files": [f.to_dict() for f in invalid]})
    else:
        for name, steps in plans.items():
            out.print(log.mask(f"{name}:"), markup=False)
            for step in steps:
                out.print(log.mask(f"  {step}"), markup=False)
    say_invalid(invalid)
    if invalid:
        exit_with(ExitStatus.USAGE)


def run_each(command: str, config: Config, selected: Sequence[Job],
             action: Callable[[Context, Job], JobResult], *, as_json: bool,
             text: Callable[[JobResult], str], due: bool = False,
             all_jobs: bool = False, named: Sequence[str] = (),
             due_kind: str | None = None) -> NoReturn:
    """Run a per-job action for every selected job (bounded concurrency), report, exit.

    `due` (--due; the command is the run kind): jobs not due are listed, not run; with
    `all_jobs` a job running on another orchestrator is listed too (see actions/fleet.py).
    `named`: the job names given; an invalid job file among them is refused (exit 2) while
    the valid jobs run; every invalid job file is reported and the command exits 2.
    `due_kind`: the schedule --due follows when not the command's (`verify-full`)."""
    results: list[JobResult] = []
    if selected:  # only invalid job files named: nothing to run, no state opened
        ctx = context(config, due=due)
        kind = due_kind or command
        results += run_jobs(
            selected, lambda job: run_job(ctx, job, action, kind=kind, all_jobs=all_jobs),
            concurrency=config.settings.concurrency)
    report(command, [*results, *invalid_results(config, named)], as_json=as_json, text=text,
           invalid=config.invalid)


def interactive() -> bool:
    """Progress and prompts only on a terminal; quiet under systemd and cron."""
    return sys.stderr.isatty() and "INVOCATION_ID" not in os.environ


def output_file(path: Path) -> Path:
    """An output path (-o, --textfile) whose directory exists; else a usage error (exit 2)."""
    if not path.parent.is_dir():
        raise UsageError(f"{path}: directory {path.parent} does not exist; nothing was written")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give a file name")
    return path


def input_file(path: Path, what: str) -> Path:
    """An input file named on the command line; a missing one is a usage error (exit 2)."""
    if not path.is_file():
        raise UsageError(f"{what} {path} does not exist or is not a file")
    return path
