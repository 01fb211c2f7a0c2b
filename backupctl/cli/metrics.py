"""Commands of the metrics capability: `metrics` (text once) and `exporter` (HTTP)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from backupctl.cli.common import exit_with, load, output_file, say
from backupctl.errors import BackupctlError
from backupctl.execute.local import LocalRunner
from backupctl.metrics import Source, exposition
from backupctl.metrics.exporter import DEFAULT_LISTEN, Exporter, JobsWatcher, parse_listen, serve
from backupctl.metrics.textfile import write_textfile
from backupctl.restic.run import installed_version
from backupctl.state.view import StateReader
from backupctl.status import ExitStatus

app = typer.Typer()


@app.command()
def metrics(textfile: Annotated[Path | None, typer.Option(
        "--textfile", help="write atomically to this file (node_exporter textfile collector; "
        "name it *.prom) instead of stdout")] = None) -> None:
    """Write the Prometheus metrics once, built from the state database."""
    if textfile is not None:
        output_file(textfile)
    config = load()
    jobs = [jf.job for _, jf in sorted(config.jobs.items())]
    reader = StateReader(config.settings.effective_database_url)
    source = Source(jobs=lambda: jobs, reader=reader,
                    restic_version=installed_version(LocalRunner()))
    try:
        if textfile is None:
            text, state_ok = exposition(source)
            sys.stdout.buffer.write(text)
            sys.stdout.flush()
        else:
            state_dir = config.settings.state_dir
            lock = state_dir / "textfile.lock" if state_dir.is_dir() else None
            state_ok = write_textfile(source, textfile, lock=lock)
    except OSError as exc:
        raise BackupctlError(f"cannot write {textfile}: {exc.strerror or exc}") from None
    finally:
        reader.close()
    if not state_ok:
        say("backupctl: the state database could not be read; the metrics say "
            "backupctl_state_up 0")
        exit_with(ExitStatus.FAILED)


@app.command()
def exporter(listen: Annotated[str, typer.Option(
        "--listen", help="ADDR:PORT to serve /metrics and /healthz on ([::1]:PORT for IPv6)")]
        = DEFAULT_LISTEN) -> None:
    """Serve /metrics over HTTP, reading the state database on every scrape."""
    parse_listen(listen)
    config = load()
    source = Source(jobs=JobsWatcher(config),
                    reader=StateReader(config.settings.effective_database_url),
                    restic_version=installed_version(LocalRunner()))
    serve(Exporter(source), listen)
