"""Commands of the notification capability (SPEC §8): `notify test|check|digest|unit-failed`.

No logic here: backupctl.notify does the work (imported by these commands only, so other
commands do not pay for it). Run notifications need no command: they go out from every run
through the run observer (actions/notify.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from backupctl.actions import textfile
from backupctl.cli.common import JsonOpt, context, emit_json, exit_with, load, say
from backupctl.errors import BackupctlError, UsageError
from backupctl.status import ExitStatus

if TYPE_CHECKING:
    from backupctl.notify import DeliveryResult

app = typer.Typer()
notify_app = typer.Typer(no_args_is_help=True, help="Notifications: test the channels, send "
                         "stale alerts and the digest.")
app.add_typer(notify_app, name="notify")


def _show(results: Sequence[DeliveryResult]) -> None:
    for r in results:
        what = "delivered" if r.ok else f"FAILED: {r.error}"
        say(f"[{'OK' if r.ok else 'FAILED'}] {r.channel}: {r.event} {what} "
            f"({r.attempts} attempt{'s' if r.attempts != 1 else ''})")


def _exit(results: Sequence[DeliveryResult]) -> None:
    """1 when a channel could not be reached (the message was not delivered there)."""
    if any(not r.ok for r in results):
        exit_with(ExitStatus.FAILED)


@notify_app.command("test")
def notify_test(
        channel: Annotated[str | None, typer.Argument(help="one channel (default: all)")]
        = None,
        as_json: JsonOpt = False) -> None:
    """Send a test message to every channel (or one); exit 1 if any could not be reached."""
    from backupctl import notify

    config = load()
    notify.select_channels(config, channel)  # a bad name: exit 2 before the state is opened
    ctx = context(config)
    results = notify.notify_test(config, ctx.store, channel)
    textfile.refresh(ctx)  # the deliveries are metrics too (notify_last_status)
    if as_json:
        emit_json({"command": "notify test", "deliveries": [r.to_dict() for r in results]})
    else:
        _show(results)
    _exit(results)


@notify_app.command("check")
def notify_check(as_json: JsonOpt = False) -> None:
    """Alert on jobs whose backups, copies or restore tests stopped succeeding (hourly timer)."""
    from backupctl import notify

    config = load()
    ctx = context(config)
    found = notify.check_stale(config, ctx.store)
    textfile.refresh(ctx)
    if as_json:
        emit_json({"command": "notify check", **found.to_dict()})
    else:
        for item in found.stale:
            since = item.last_success or "never"
            say(f"[STALE] {item.job}: {item.kind} ({item.repository}) last success {since}")
        if not found.stale:
            say("no stale job")
        _show(found.deliveries)
    _exit(found.deliveries)


@notify_app.command("digest")
def notify_digest(
        days: Annotated[int, typer.Option("--days", help="the last N days, today included")]
        = 7,
        as_json: JsonOpt = False) -> None:
    """Send the period's summary to every channel (e-mail: the summary page as PDF)."""
    from backupctl import notify

    if not 1 <= days <= 366:
        raise UsageError(f"--days must be between 1 and 366, not {days}")
    config = load()
    notify.select_channels(config, None)  # none configured: exit 2 before the state is opened
    ctx = context(config)
    sent = notify.digest(config, ctx.store, days)
    textfile.refresh(ctx)
    if as_json:
        emit_json({"command": "notify digest", **sent.to_dict()})
    else:
        say(sent.message.subject)
        _show(sent.deliveries)
    _exit(sent.deliveries)


@notify_app.command("unit-failed")
def notify_unit_failed(
        unit: Annotated[str, typer.Argument(help="the failed unit (systemd's %i)")]) -> None:
    """Started by systemd (OnFailure=): report what the failed unit could not. Exit 0."""
    # Always 0: this unit runs because another failed, and its own failure would only add
    # a second alarm about the same thing (ExecStartPre already logged it to the journal).
    from backupctl import notify

    try:
        config = load()
        ctx = context(config)
        results = notify.unit_failed(
            config, ctx.store, unit,
            exit_status=os.environ.get("MONITOR_EXIT_STATUS") or None,
            service_result=os.environ.get("MONITOR_SERVICE_RESULT") or None)
        textfile.refresh(ctx)
    except BackupctlError as exc:
        say(f"backupctl notify unit-failed {unit}: nothing sent: {exc}")
        return
    _show(results)
