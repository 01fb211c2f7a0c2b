"""Logging: journald-friendly lines on stderr, with every known secret masked.

Secrets register themselves here when read (execute.Secret); the filter replaces them in
every record, as a second line of defence behind "never put a secret in a message".
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
MASK = "***"


def register_secret(value: str) -> None:
    if value:
        with _LOCK:
            _SECRETS.add(value)


def mask(text: str) -> str:
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def mask_data(value: Any) -> Any:
    """`mask` applied to every string (keys too) of JSON-like data."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask_data(k): mask_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v) for v in value]
    return value


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = None
        return True


def setup(*, verbose: bool = False) -> None:
    """Log to stderr: `LEVEL logger: message`, no timestamps (journald adds its own)."""
    root = logging.getLogger("backupctl")
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
