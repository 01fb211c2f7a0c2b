"""The `backupctl` program: builds the command line and is its one door for errors.

Every command module registers its commands on its own typer app; this module merges them
and runs the result. It is the only place that turns an exception into an exit: a
BackupctlError becomes its message (one line per problem, secrets masked) and its exit
status (SPEC §4); SIGTERM/SIGINT stop running jobs and exit 1; anything unexpected (a bug)
prints one line and keeps the traceback in `state_dir/errors.log` (and on stderr with -v).
"""

from __future__ import annotations

import datetime
import logging
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer

from backupctl import __version__, execute, log
from backupctl.cli import common, copy, drill, evidence, jobs, metrics, schedule, verify
from backupctl.cli.common import OPTIONS, err, out
from backupctl.errors import BackupctlError, ConfigError
from backupctl.status import ExitStatus

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Backup verification and restore-test orchestrator (restic over SSH).")
for module in (jobs, verify, copy, evidence, drill, schedule, metrics):
    app.add_typer(module.app)

ERRORS_LOG = "errors.log"


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
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        app()
    except BackupctlError as exc:
        _failed(exc)
    except (execute.Cancelled, KeyboardInterrupt) as exc:
        common.say(f"backupctl: {exc or 'interrupted'}; running jobs were stopped and "
                   "recorded interrupted")
        sys.exit(int(ExitStatus.FAILED))
    except Exception as exc:
        _bug(exc)
    finally:
        _refresh_metrics()


def _refresh_metrics() -> None:
    """Any command that opened the state (backup, copy, verify, clear, drill, …) may have
    changed it: refresh node_exporter's textfile when textfile_dir is set."""
    ctx = OPTIONS.context
    if ctx is None or ctx.config.settings.textfile_dir is None:
        return
    from backupctl.metrics.textfile import refresh

    refresh(ctx.config, clock=ctx.clock, restic_version=ctx.restic_version)
