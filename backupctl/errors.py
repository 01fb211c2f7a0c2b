"""Exception hierarchy; each exception maps to exactly one ExitStatus, and carries the
category of its failure (`Reason`) where it has one.

A run's error text can name files of the backed-up server, so a notification never shows
it: it shows the category, decided here where the failure is known and stored with the run
(`runs.reason`), never guessed from the text afterwards.
"""

from __future__ import annotations

import enum

from backupctl.status import ExitStatus


class Reason(enum.StrEnum):
    """Why a run failed, as a notification says it (notify/texts.yaml `reason.*`)."""

    CONFIG = "config"
    HOST_KEY = "host_key"
    PASSWORD = "password"  # noqa: S105 (a category's name)
    LOCKED = "locked"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    SPACE = "space"
    REPOSITORY = "repository"
    CHECK = "check"
    HOOK = "hook"


class BackupctlError(Exception):
    """Base error: a message that tells the operator what failed and what to do."""

    status: ExitStatus = ExitStatus.FAILED
    reason: Reason | None = None

    def __init__(self, *args: object, reason: Reason | None = None) -> None:
        super().__init__(*args)
        if reason is not None:
            self.reason = reason


class ConfigError(BackupctlError):
    """Invalid configuration or usage: nothing was run."""

    status = ExitStatus.USAGE
    reason = Reason.CONFIG

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("\n".join(messages))


class UsageError(BackupctlError):
    status = ExitStatus.USAGE
    reason = Reason.CONFIG


class HostKeyError(BackupctlError):
    """Unknown or changed SSH host key: refused."""

    reason = Reason.HOST_KEY


class ConnectError(BackupctlError):
    """Host unreachable, authentication failed, connection lost."""

    reason = Reason.UNREACHABLE


class CommandFailed(BackupctlError):
    """A command on a host exited non-zero where that means failure."""


class ResticError(BackupctlError):
    """restic could not complete (exit code table in backupctl.restic.codes)."""


class DataError(BackupctlError):
    """Verification ran and found bad data."""

    status = ExitStatus.BAD_DATA


class LockHeld(BackupctlError):
    """The job is already running elsewhere."""

    status = ExitStatus.LOCKED
    reason = Reason.LOCKED
