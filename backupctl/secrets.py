"""Reading repository passwords from files on the orchestrator."""

from __future__ import annotations

from pathlib import Path

from backupctl.errors import BackupctlError
from backupctl.execute import Secret


def read_secret(path: Path, *, what: str = "password file") -> Secret:
    """The first line of `path` (restic's own rule), as a Secret."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BackupctlError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        # Never echo the bytes: they are (part of) the password.
        raise BackupctlError(f"{what} {path} is not UTF-8 text") from None
    value = text.splitlines()[0] if text else ""
    if not value:
        raise BackupctlError(f"{what} {path} is empty")
    return Secret(value)
