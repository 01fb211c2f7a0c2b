"""The `backupctl` program: builds the command line and is its one door for errors.

Every command module registers its commands on its own typer app; this module merges them
and runs the result. A run imports only the module of the command it was given (COMMANDS):
each module pulls in its actions, and a scheduled verify should not pay for the exporter,
the evidence reports or the drill (0.01–0.2 s of start-up on 2 cores, docs/benchmarks.md);
help and unknown commands import them all. It is the only place that turns an exception
into an exit: a BackupctlError becomes its message (one line per problem, secrets masked)
and its exit status (SPEC §4); SIGTERM/SIGINT stop running jobs and exit 1; anything
unexpected (a bug) prints one line and keeps the traceback in `state_dir/errors.log` (and
on stderr with -v).
"""

from __future__ import annotations

import datetime
import importlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, Final, NoReturn

import typer

from backupctl import __version__, execute, log
from backupctl.cli import common
from backupctl.cli.common import OPTIONS, err, out
from backupctl.errors import BackupctlError, ConfigError
from backupctl.status import ExitStatus

# Every top-level command or command group and the module of backupctl.cli that defines
# it; the modules' order is that of `backupctl --help` (tests/unit/cli/test_main.py checks
# the table against what the modules register).
COMMANDS: Final = {
    "validate": "jobs", "init": "jobs", "trust": "jobs", "backup": "jobs", "status": "jobs",
    "verify": "verify",
    "copy": "copy", "clear": "copy", "canary": "copy", "media": "copy",
    "report": "evidence", "evidence": "evidence",
    "runbook": "drill", "drill": "drill",
    "restore": "restore",
    "schedule": "schedule",
    "metrics": "metrics", "exporter": "metrics",
    "notify": "notify",
}
CONFIG_OPTION: Final = ("-c", "--config")  # the one global option that takes a value

ERRORS_LOG = "errors.log"


def _version(value: bool) -> None:
    if value:
        out.print(f"backupctl {__version__}")
        raise typer.Exit(0)


def _global(
    config: Annotated[Path | None, typer.Option(
        *CONFIG_OPTION, help="global configuration (default: $BACKUPCTL_CONFIG or "
        "/etc/backupctl/backupctl.yaml)")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="log every command")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    OPTIONS.config, OPTIONS.verbose = config, verbose
    log.setup(verbose=verbose)


def command_name(args: Sequence[str]) -> str | None:
    """The command `args` (argv without the program) names: the first word that is not a
    global option or its value (`-c FILE`, `-cFILE`, `-vc FILE`, `--config=FILE`, `--`);
    none when `--help` comes first (the program's help lists every command)."""
    words = iter(args)
    for word in words:
        if word == "--help":
            return None
        if word == "--":
            return next(words, None)
        if word in CONFIG_OPTION or (  # `-vc FILE`: a cluster of short flags ending in -c
                not word.startswith("--") and word.startswith("-") and len(word) > 2
                and word.endswith(CONFIG_OPTION[0][1])):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _flags_take_no_value() -> None:
    """typer 0.29's help prints every flag as taking a value (`-v, --verbose <bool>`), and
    `--verbose true` is then a usage error: a flag shows no type (`--verbose`)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()


def build(args: Sequence[str]) -> typer.Typer:
    """The command line for `args`: only the module of the command they name, or every
    module when they name none or one this table does not know (help, typos)."""
    app = typer.Typer(add_completion=False, no_args_is_help=True,
                      pretty_exceptions_enable=False, help="Backup verification and "
                      "restore-test orchestrator (restic over SSH).")
    app.callback()(_global)
    name = command_name(args)
    modules = [COMMANDS[name]] if name in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for module in modules:
        app.add_typer(importlib.import_module(f"backupctl.cli.{module}").app)
    return app


def _on_signal(signum: int, _frame: FrameType | None) -> NoReturn:
    """SIGTERM/SIGINT: kill running commands; each run records itself interrupted."""
    execute.cancel()
    raise execute.Cancelled(f"stopped by signal {signal.Signals(signum).name}")


def _failed(error: BackupctlError) -> NoReturn:
    lines = error.messages if isinstance(error, ConfigError) else [str(error)]
    for line in lines:
        common.say(line)
    sys.exit(int(error.status))


def _bug(exc: BaseException) -> NoReturn:
    """An unexpected exception: one line for the operator, the traceback kept for a report."""
    text = "".join(traceback.format_exception(exc))
    where = "run with -v to see the traceback"
    if OPTIONS.verbose:
        err.print(log.mask(text), markup=False, end="")
    elif OPTIONS.loaded is not None:
        path = OPTIONS.loaded.settings.state_dir / ERRORS_LOG
        try:
            with path.open("a", encoding="utf-8") as handle:
                path.chmod(0o600)
                stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
                handle.write(f"--- {stamp} backupctl {__version__}: "
                             f"{' '.join(sys.argv[1:])}\n{log.mask(text)}")
            where = f"the traceback is in {path}"
        except OSError:
            pass
    logging.getLogger("backupctl").debug("unexpected error", exc_info=exc)
    common.say(f"backupctl: unexpected error (a bug, please report it): "
               f"{exc.__class__.__name__}: {exc}; {where}")
    sys.exit(int(ExitStatus.FAILED))


def main() -> None:
    os.umask(0o077)  # state, reports, restored data: nothing backupctl writes is for others
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        build(sys.argv[1:])()
    except BackupctlError as exc:
        _failed(exc)
    except (execute.Cancelled, KeyboardInterrupt) as exc:
        common.say(f"backupctl: {exc or 'interrupted'}; running jobs were stopped and "
                   "recorded interrupted")
        sys.exit(int(ExitStatus.FAILED))
    except Exception as exc:
        _bug(exc)

