"""Commands of the metrics capability: `metrics` (text once) and `exporter` (HTTP)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from backupctl.cli.common import exit_with, load, output_file, say
from backupctl.errors import BackupctlError
from backupctl.execute import Programs
from backupctl.execute.local import LocalRunner
from backupctl.metrics import Source, exposition, invalid_files, notify_channels
from backupctl.metrics.exporter import DEFAULT_LISTEN, Exporter, JobsWatcher, parse_listen, serve
from backupctl.metrics.textfile import write_textfile
from backupctl.restic.run import installed_version
from backupctl.secrets import read_secret
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
    channels, invalid = notify_channels(config), invalid_files(config)
    source = Source(jobs=lambda: jobs, reader=reader, channels=lambda: channels,
                    invalid=lambda: invalid, restic_version=installed_version(
                        Programs(LocalRunner(), {"restic": config.settings.restic})))
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
        "--listen", help="ADDR:PORT to serve the status page, /metrics and /healthz on "
        "([::1]:PORT for IPv6; loopback by default: see docs/operations.md to expose it)")]
        = DEFAULT_LISTEN) -> None:
    """Serve /metrics and the status page (/) over HTTP, reading the state on every request."""
    from backupctl.web.page import StatusPage  # Jinja2: only the exporter pays for it

    parse_listen(listen)
    config = load()
    watcher = JobsWatcher(config)
    source = Source(jobs=watcher, channels=watcher.channels, invalid=watcher.invalid,
                    reader=StateReader(config.settings.effective_database_url),
                    restic_version=installed_version(
                        Programs(LocalRunner(), {"restic": config.settings.restic})))
    secret = config.settings.web_password_file
    page = StatusPage(config=lambda: watcher.config, jobs=watcher, reader=source.reader,
                      password=read_secret(secret, what="web password file")
                      if secret is not None else None)
    serve(Exporter(source, page), listen)
