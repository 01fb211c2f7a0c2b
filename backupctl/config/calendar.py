"""systemd OnCalendar expressions: validation, normalized form and next elapse.

`systemd-analyze calendar` is the authority (the one wrapper of it in the code base); where
it is not installed, a pure-Python syntax check stands in for validation.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime

from backupctl.execute import Runner
from backupctl.execute.local import LocalRunner

_SHORTHANDS = {"minutely", "hourly", "daily", "monthly", "weekly", "yearly", "annually",
               "quarterly", "semiannually"}
_DAYS = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)(?:day|sday|nesday|rsday|urday)?"
_WEEKDAYS = rf"{_DAYS}(?:(?:\.\.|,){_DAYS})*"
_FIELD = r"(?:\*|\d+(?:\.\.\d+)?(?:/\d+)?)(?:,(?:\*|\d+(?:\.\.\d+)?(?:/\d+)?))*"
_DATE = rf"{_FIELD}-{_FIELD}(?:-|~){_FIELD}|{_FIELD}(?:-|~){_FIELD}"
_TIME = rf"{_FIELD}:{_FIELD}(?::{_FIELD}(?:\.\d+)?)?"
_EXPR = re.compile(rf"^(?:{_WEEKDAYS}\s+)?(?:(?:{_DATE})(?:\s+{_TIME})?|{_TIME})"
                   r"(?:\s+(?:UTC|[A-Za-z_]+/[A-Za-z_]+))?$|"
                   rf"^{_WEEKDAYS}$")


@dataclass(frozen=True)
class Analyzed:
    """What `systemd-analyze calendar` says of an expression."""

    ok: bool
    normalized: str | None = None
    next_elapse: datetime | None = None
    error: str | None = None


def analyze(expr: str, runner: Runner | None = None) -> Analyzed | None:
    """`systemd-analyze calendar -- EXPR` (in UTC); None when systemd-analyze is absent."""
    binary = shutil.which("systemd-analyze")
    if binary is None:
        return None
    result = (runner or LocalRunner()).run([binary, "calendar", "--", expr], timeout=30,
                                           env={"TZ": "UTC"})
    if result.returncode == 127:
        return None
    if not result.ok:
        lines = (result.stderr.strip() or "invalid calendar expression").splitlines()
        return Analyzed(ok=False, error=lines[-1])
    fields: dict[str, str] = {}
    for line in result.stdout.decode(errors="replace").splitlines():
        key, _, value = line.strip().partition(":")
        fields.setdefault(key, value.strip())
    return Analyzed(ok=True, normalized=fields.get("Normalized form") or None,
                    next_elapse=_elapse(fields.get("Next elapse", "")))


def _elapse(value: str) -> datetime | None:
    """`Sun 2026-11-01 02:00:00 UTC` → an aware datetime."""
    try:
        stamp = value[4:].rsplit(" ", 1)[0]
        return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def check(expr: str) -> str | None:
    """None when `expr` is a valid OnCalendar expression, else the reason."""
    if any(ord(c) < 32 or ord(c) == 127 for c in expr):
        return "contains a control character"
    found = analyze(expr)
    if found is not None:
        return None if found.ok else found.error
    if expr.strip().lower() in _SHORTHANDS or _EXPR.match(expr.strip()):
        return None
    return f"invalid OnCalendar expression {expr!r}"


def next_elapse(expr: str) -> datetime | None:
    """When the expression fires next, or None when unknown."""
    found = analyze(expr)
    return found.next_elapse if found is not None else None
