"""Exception hierarchy; each exception maps to exactly one ExitStatus."""

from __future__ import annotations

from backupctl.status import ExitStatus


class BackupctlError(Exception):
    """Base error: a message that tells the operator what failed and what to do."""

    status: ExitStatus = ExitStatus.FAILED


class ConfigError(BackupctlError):
    """Invalid configuration or usage: nothing was run."""

    status = ExitStatus.USAGE

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("\n".join(messages))


class UsageError(BackupctlError):
    status = ExitStatus.USAGE


class HostKeyError(BackupctlError):
    """Unknown or changed SSH host key: refused."""


class ConnectError(BackupctlError):
    """Host unreachable, authentication failed, connection lost."""


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
