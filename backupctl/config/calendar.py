"""systemd OnCalendar expressions: validation and next elapse.

Uses `systemd-analyze calendar` when installed (the authority), else a pure-Python syntax check.
"""

from __future__ import annotations

import itertools
import re
import shutil
from datetime import UTC, datetime

from backupctl.execute import Result
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


def _analyze(expr: str) -> Result | None:
    binary = shutil.which("systemd-analyze")
    if binary is None:
        return None
    return LocalRunner().run([binary, "calendar", "--", expr], timeout=10, env={"TZ": "UTC"})


def check(expr: str) -> str | None:
    """None when `expr` is a valid OnCalendar expression, else the reason."""
    if any(ord(c) < 32 for c in expr):
        return "contains a control character"
    result = _analyze(expr)
    if result is not None:
        if result.ok:
            return None
        return (result.stderr.strip() or "invalid calendar expression").splitlines()[-1]
    if expr.strip().lower() in _SHORTHANDS or _EXPR.match(expr.strip()):
        return None
    return f"invalid OnCalendar expression {expr!r}"


def next_elapse(expr: str) -> datetime | None:
    """When the expression fires next (from systemd-analyze), or None when unknown."""
    result = _analyze(expr)
    if result is None or not result.ok:
        return None
    for line in result.stdout.decode(errors="replace").splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Next elapse" and value.strip():
            try:
                stamp = value.strip()[4:].rsplit(" ", 1)[0]
                return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            except ValueError:
                return None
    return None


_ELAPSE = re.compile(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


def interval(expr: str, *, iterations: int = 10) -> int | None:
    """The longest gap in seconds between the next `iterations` elapses, None when unknown.

    The longest, not the first: `Mon..Fri 22:15` fires daily but leaves a weekend gap, and a
    stale alert must not fire every Sunday."""
    binary = shutil.which("systemd-analyze")
    if binary is None:
        return None
    result = LocalRunner().run([binary, "calendar", f"--iterations={iterations}", "--", expr],
                               timeout=10, env={"TZ": "UTC"})
    if not result.ok:
        return None
    stamps = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S")
              for s in _ELAPSE.findall(result.stdout.decode(errors="replace"))]
    gaps = [int((b - a).total_seconds()) for a, b in itertools.pairwise(stamps)]
    return max(gaps) if gaps else None
