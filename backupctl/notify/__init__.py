"""Notifications (SPEC §8): e-mail and chat messages, the dead-man's switch, stale alerts,
the weekly digest. The run flow and the CLI call the functions re-exported here."""

from __future__ import annotations

from backupctl.notify.api import (
    after_run,
    notify_test,
    ping_start,
    select_channels,
    send_event,
    unit_failed,
)
from backupctl.notify.digest import Digest, digest
from backupctl.notify.model import DeliveryResult, FinishedRun, PingResult, StaleCheck
from backupctl.notify.stale import check_stale

__all__ = ["DeliveryResult", "Digest", "FinishedRun", "PingResult", "StaleCheck", "after_run",
           "check_stale", "digest", "notify_test", "ping_start", "select_channels", "send_event",
           "unit_failed"]
