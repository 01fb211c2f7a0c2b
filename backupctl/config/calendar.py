"""systemd OnCalendar expressions: validation, normalized form, next and past elapses.

`systemd-analyze calendar` is the authority (the one wrapper of it in the code base); where
it is not installed, a pure-Python syntax check stands in for validation.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime

from backupctl.errors import BackupctlError
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


class CalendarError(BackupctlError):
    """systemd-analyze cannot say when a schedule fires (exit 1)."""


def elapses(expr: str, *, base: datetime, iterations: int, runner: Runner,
            tz: str | None = None) -> list[datetime]:
    """The next `iterations` elapses of `expr` after `base`, in UTC (`tz`: the zone the
    timers run in; default this machine's, as systemd's)."""
    result = runner.run(["systemd-analyze", "calendar", f"--base-time=@{int(base.timestamp())}",
                         f"--iterations={iterations}", "--", expr],
                        timeout=30, env={"TZ": tz} if tz else None)
    if result.returncode == 127:  # the Runner could not start it
        raise CalendarError("--due needs systemd-analyze (Debian package systemd) to read the "
                            "jobs' schedules; install it, or run without --due")
    if not result.ok:
        raise CalendarError(f"cannot read the schedule {expr!r}: {result.describe()}")
    return parse_elapses(result.stdout.decode(errors="replace"), expr=expr)


def parse_elapses(text: str, *, expr: str = "") -> list[datetime]:
    """`Next elapse:` / `Iter. #N:` lines of `systemd-analyze calendar`, in UTC.

    A local time is followed by its `(in UTC):` line, which is the one taken; when the local
    zone is UTC that line is absent and the elapse itself ends in `UTC`.
    """
    found: list[str] = []
    for line in text.splitlines():
        key, _, value = line.strip().partition(": ")
        if key == "Next elapse" or key.startswith("Iter. #"):
            if value.strip() == "never":
                break
            found.append(value.strip())
        elif key == "(in UTC)" and found:
            found[-1] = value.strip()
    times = []
    for value in found:
        stamp, _, zone = value.rpartition(" ")
        if zone != "UTC":
            raise CalendarError(f"cannot read systemd-analyze's answer for {expr!r}: "
                                f"{value!r} has no UTC time")
        try:
            when = datetime.strptime(stamp.split(" ", 1)[1], "%Y-%m-%d %H:%M:%S")
        except (IndexError, ValueError):
            raise CalendarError(f"cannot read systemd-analyze's answer for {expr!r}: "
                                f"{value!r}") from None
        times.append(when.replace(tzinfo=UTC))
    return times


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
