"""The typer application, global options, and the helpers every command shares."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from backupctl import __version__, log
from backupctl.actions.context import Context
from backupctl.actions.outcome import JobResult, run_jobs
from backupctl.config.schema import Job
from backupctl.config.validate import Config, config_path, load_config
from backupctl.errors import BackupctlError, ConfigError
from backupctl.state.db import Store
from backupctl.status import ExitStatus

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Backup verification and restore-test orchestrator (restic over SSH).")
# Under systemd/cron/pipes rich would wrap tables at 80 columns; logs read better wide.
err = Console(stderr=True, highlight=False, soft_wrap=True,
              width=None if sys.stderr.isatty() else 200)
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


@dataclass
class Options:
    config: Path | None = None
    verbose: bool = False
    context: Context | None = None  # the command's state context (metrics textfile refresh)


OPTIONS = Options()


class Terminated(BaseException):
    """SIGTERM: unwind like Ctrl-C so runs are recorded failed and scratch is wiped."""


def _on_sigterm(signum: int, _frame: FrameType | None) -> NoReturn:
    raise Terminated(f"terminated by signal {signum}")


def _version(value: bool) -> None:
    if value:
        out.print(f"backupctl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    config: Annotated[Path | None, typer.Option(
        "-c", "--config", help="global configuration (default: $BACKUPCTL_CONFIG or "
        "/etc/backupctl/backupctl.yaml)")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="log every command")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    OPTIONS.config, OPTIONS.verbose = config, verbose
    log.setup(verbose=verbose)


def exit_with(status: ExitStatus) -> NoReturn:
    raise typer.Exit(int(status))


def die(error: BackupctlError) -> NoReturn:
    lines = error.messages if isinstance(error, ConfigError) else [str(error)]
    for line in lines:
        err.print(log.mask(line), markup=False)
    exit_with(error.status)


def load(*, strict: bool = False) -> Config:
    """The validated configuration, or exit 2 with every problem listed."""
    path = config_path(OPTIONS.config)
    if not path.exists():
        die(ConfigError([f"{path}:1: configuration file not found (use -c FILE or "
                         "BACKUPCTL_CONFIG)"]))
    try:
        return load_config(path, strict=strict)
    except ConfigError as exc:
        die(exc)


def run_operator() -> str:
    """Who runs this (SPEC §6 `operator`): `scheduler` under systemd/cron, else the user.

    `BACKUPCTL_OPERATOR` names the operator explicitly (e.g. a manual run over ssh).
    """
    from backupctl.actions.context import manual_operator

    named = os.environ.get("BACKUPCTL_OPERATOR", "").strip()
    if named:
        return named
    if "INVOCATION_ID" in os.environ or not (sys.stdin.isatty() or sys.stderr.isatty()):
        return "scheduler"
    return manual_operator(None)


def context(config: Config, *, operator: str | None = None) -> Context:
    operator = operator or run_operator()
    try:
        config.settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = Store(config.settings.effective_database_url,
                      orchestrator=config.settings.effective_orchestrator)
    except OSError as exc:
        die(BackupctlError(f"cannot create state_dir {config.settings.state_dir}: {exc}"))
    except BackupctlError as exc:
        die(exc)
    OPTIONS.context = Context(config=config, store=store, operator=operator)
    return OPTIONS.context


def emit_json(payload: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout (secrets masked as a last line of defence)."""
    text = json.dumps(payload, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write(log.mask(text) + "\n")
    sys.stdout.flush()


def report(command: str, outcomes: Sequence[JobResult], *, as_json: bool,
           text: Callable[[JobResult], str]) -> NoReturn:
    """Render per-job outcomes (text on stderr or one JSON object) and exit with the worst."""
    status = ExitStatus.worst([o.status for o in outcomes])
    if as_json:
        emit_json({"command": command, "exit_code": int(status),
                   "status": status.name.lower(), "jobs": [o.to_dict() for o in outcomes]})
    else:
        for outcome in outcomes:
            line = text(outcome) if outcome.status is not ExitStatus.USAGE else ""
            mark = "OK" if outcome.status is ExitStatus.OK else outcome.status.name
            # Errors already start with the job name; print it once.
            error = (outcome.error or "").removeprefix(f"{outcome.job}: ")
            err.print(log.mask(f"[{mark}] {outcome.job}: {line or error}"), markup=False)
            if error and line:
                err.print(log.mask(f"    {error}"), markup=False)
    exit_with(status)


def select(config: Config, names: list[str] | None, *, all_jobs: bool) -> list[Job]:
    """The jobs named on the command line (or --all); an unknown name exits 2."""
    try:
        return config.select(names or [], all_jobs=all_jobs)
    except BackupctlError as exc:
        die(exc)


def show_plans(command: str, plans: dict[str, list[str]], *, as_json: bool) -> None:
    """--dry-run: print each job's plan (secrets already masked by the builders)."""
    if as_json:
        emit_json({"command": command, "dry_run": True, "plans": plans})
        return
    for name, steps in plans.items():
        out.print(f"{name}:", markup=False)
        for step in steps:
            out.print(f"  {step}", markup=False)


def run_each(command: str, config: Config, selected: Sequence[Job],
             action: Callable[[Context, Job], JobResult], *, as_json: bool,
             text: Callable[[JobResult], str]) -> NoReturn:
    """Run a per-job action for every selected job (bounded concurrency), report, exit."""
    ctx = context(config)
    outcomes = run_jobs(selected, lambda job: action(ctx, job),
                        concurrency=config.settings.concurrency)
    report(command, outcomes, as_json=as_json, text=text)


def interactive() -> bool:
    """Progress and prompts only on a terminal; quiet under systemd and cron."""
    return sys.stderr.isatty() and "INVOCATION_ID" not in os.environ


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app()
    except Terminated as exc:
        err.print(f"backupctl: {exc}", markup=False)
        sys.exit(int(ExitStatus.FAILED))
    except KeyboardInterrupt:
        err.print("backupctl: interrupted", markup=False)
        sys.exit(int(ExitStatus.FAILED))
    finally:
        # Any command that opened the state (backup, copy, verify, clear, drill, …) may have
        # changed it: refresh node_exporter's textfile when textfile_dir is set.
        if OPTIONS.context is not None:
            from backupctl.metrics.textfile import refresh

            refresh(OPTIONS.context)


# Register the commands (each module adds its own to `app`).
from backupctl.cli import copy as _copy  # noqa: E402,F401
from backupctl.cli import drill as _drill  # noqa: E402,F401
from backupctl.cli import evidence as _evidence  # noqa: E402,F401
from backupctl.cli import jobs as _jobs  # noqa: E402,F401
from backupctl.cli import metrics as _metrics  # noqa: E402,F401
from backupctl.cli import verify as _verify  # noqa: E402,F401
