"""Files that hold secrets (repository passwords, the evidence key, bundle passwords): only
the user running backupctl may read them, and they are read without ever echoing them."""

from __future__ import annotations

import os
import re
import stat
import urllib.parse
from pathlib import Path

from backupctl.errors import BackupctlError, UsageError
from backupctl.execute import Secret
from backupctl.log import register_secret

# `scheme://user:password@host…` (restic's rest: URLs, database URLs)
_CREDENTIALS = re.compile(r"(://[^/:@]*):([^/@]*)@")  # the user may be empty (://:pw@)


def display_url(url: str) -> str:
    """A URL without its password (rest:http://user:pass@host/ → rest:http://user:***@host/)."""
    return _CREDENTIALS.sub(r"\1:***@", url)


def url_password(url: str) -> str | None:
    """The password inside a URL, if it holds one."""
    found = _CREDENTIALS.search(url)
    return found.group(2) if found and found.group(2) else None


def register_url_secrets(*urls: str | None) -> None:
    """Passwords inside URLs are secrets from the moment the configuration is read: masked
    in every message, record, report and JSON (as written and percent-decoded)."""
    for url in urls:
        password = url_password(url or "")
        if password:
            register_secret(password)
            register_secret(urllib.parse.unquote(password))


def private_file_problem(path: Path, what: str) -> str | None:
    """Why `path` may not hold a secret (missing, not a file, someone else's, readable or
    writable by group/others), or None. Never follows a final symbolic link's target mode."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return f"{what} {path} does not exist"
    except (OSError, ValueError) as exc:
        return f"{what} {path} cannot be used: {getattr(exc, 'strerror', None) or exc}"
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISREG(info.st_mode):
        return f"{what} {path} is not a regular file"
    if info.st_uid != os.geteuid():
        return (f"{what} {path} is owned by uid {info.st_uid}, not by the user running "
                f"backupctl (uid {os.geteuid()}, mode {mode:04o}): it holds a secret; "
                f"chown it to that user and chmod 600 {path}")
    if mode & 0o077:
        return (f"{what} {path} is readable or writable by group/others (mode {mode:04o}): "
                f"it holds a secret; run chmod 600 {path}")
    if not os.access(path, os.R_OK):
        return f"{what} {path} is not readable by this user"
    return None


SECRET_FILE_LIMIT = 1 << 20  # a password or a credentials file, never a disk image


def read_private(path: Path, what: str) -> bytes:
    """The bytes of a file that holds a secret, checked on the descriptor it is read from:
    the path checked first (`private_file_problem`, exit 2) may be swapped between the check
    and the open (a FIFO there would hang the read, someone else's file would be read), so
    the open never blocks and the opened file must still be a private regular file."""
    if (problem := private_file_problem(path, what)) is not None:
        raise UsageError(problem)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise BackupctlError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid()
                or stat.S_IMODE(info.st_mode) & 0o077):
            raise UsageError(f"{what} {path} changed while it was opened (no longer a private "
                             "regular file of this user); nothing was read")
        return handle.read(SECRET_FILE_LIMIT)


def read_secret(path: Path, *, what: str = "password file") -> Secret:
    """The first line of `path` (restic's own rule), as a Secret; the file must be private
    (a usage error, exit 2, when anyone else could read it)."""
    try:
        text = read_private(path, what).decode("utf-8")
    except UnicodeDecodeError:
        # Never echo the bytes: they are (part of) the password.
        raise BackupctlError(f"{what} {path} is not UTF-8 text") from None
    value = text.splitlines()[0] if text else ""
    if not value:
        raise BackupctlError(f"{what} {path} is empty")
    return Secret(value)
