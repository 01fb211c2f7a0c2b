"""systemd OnCalendar expressions: validation, normalized form, next and past elapses.

`systemd-analyze calendar` is the authority (the one wrapper of it in the code base); where
it is not installed, a pure-Python syntax check stands in for validation.
"""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Iterable
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
    elapses: tuple[datetime, ...] = ()


def analyze(expr: str, runner: Runner | None = None, *, iterations: int = 1,
            base: datetime | None = None, tz: str | None = "UTC") -> Analyzed | None:
    """`systemd-analyze calendar -- EXPR`; None when systemd-analyze is absent.

    `iterations` > 1 lists that many elapses in `elapses` (after `base`, default now); `tz`
    is the zone the expression is read in (None: this machine's, as the timers')."""
    if runner is None:
        if shutil.which("systemd-analyze") is None:
            return None
        runner = LocalRunner()
    argv = ["systemd-analyze", "calendar",
            *([f"--base-time=@{int(base.timestamp())}"] if base is not None else []),
            *([f"--iterations={iterations}"] if iterations > 1 else []), "--", expr]
    result = runner.run(argv, timeout=30, env={"TZ": tz} if tz else None)
    if result.returncode == 127:  # the runner could not start it
        return None
    if not result.ok:
        lines = (result.stderr.strip() or "invalid calendar expression").splitlines()
        return Analyzed(ok=False, error=lines[-1])
    text = result.stdout.decode(errors="replace")
    fields = dict(line.strip().partition(": ")[::2] for line in text.splitlines())
    times = parse_elapses(text, expr=expr)
    return Analyzed(ok=True, normalized=fields.get("Normalized form") or None,
                    next_elapse=times[0] if times else None, elapses=tuple(times))


class CalendarError(BackupctlError):
    """systemd-analyze cannot say when a schedule fires (exit 1)."""


def elapses(expr: str, *, base: datetime, iterations: int, runner: Runner,
            tz: str | None = None) -> list[datetime]:
    """The next `iterations` elapses of `expr` after `base`, in UTC (`tz`: the zone the
    timers run in; default this machine's, as systemd's)."""
    found = analyze(expr, runner, iterations=iterations, base=base, tz=tz)
    if found is None:
        raise CalendarError("--due needs systemd-analyze (Debian package systemd) to read the "
                            "jobs' schedules; install it, or run without --due")
    if not found.ok:
        raise CalendarError(f"cannot read the schedule {expr!r}: {found.error}")
    return list(found.elapses)


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


def check_all(exprs: Iterable[str]) -> dict[str, str | None]:
    """`check` of every expression, with one `systemd-analyze calendar E1 E2 …` for all of
    them (a site's 50 job files name up to 150 schedules; a start each added over half a
    second to every command's start). When that one call fails, an expression is bad: each
    is then asked alone, so every reason names its expression."""
    unique = [e for e in dict.fromkeys(exprs) if e not in _valid]
    plain = [e for e in unique if not _control(e)]
    if len(plain) > 1 and shutil.which("systemd-analyze") is not None:
        result = LocalRunner().run(["systemd-analyze", "calendar", "--", *plain], timeout=30,
                                   env={"TZ": "UTC"})
        text = result.stdout.decode(errors="replace")
        if result.ok and text.count("Normalized form: ") == len(plain):
            _valid.update(plain)
    return {e: check(e) for e in dict.fromkeys(exprs)}


_valid: set[str] = set()  # expressions found valid in this process


def _control(expr: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in expr)


def check(expr: str) -> str | None:
    """None when `expr` is a valid OnCalendar expression, else the reason."""
    if expr in _valid:
        return None
    if _control(expr):
        return "contains a control character"
    found = analyze(expr)
    if found is None:  # no systemd-analyze: the syntax check stands in
        if expr.strip().lower() in _SHORTHANDS or _EXPR.match(expr.strip()):
            return None
        return f"invalid OnCalendar expression {expr!r}"
    if not found.ok:
        return found.error
    _valid.add(expr)
    return None


def next_elapse(expr: str, *, tz: str | None = "UTC") -> datetime | None:
    """When the expression fires next, or None when unknown (`tz`: the zone it is read in;
    None: this machine's, as the systemd timers read it)."""
    found = analyze(expr, tz=tz)
    return found.next_elapse if found is not None else None


def interval(expr: str, *, iterations: int = 10) -> int | None:
    """The longest gap in seconds between the next `iterations` elapses, None when unknown.

    The longest, not the first: `Mon..Fri 22:15` fires daily but leaves a weekend gap, and a
    stale alert must not fire every Sunday."""
    found = analyze(expr, iterations=iterations)
    if found is None or not found.ok:
        return None
    gaps = [int((b - a).total_seconds()) for a, b in itertools.pairwise(found.elapses)]
    return max(gaps) if gaps else None
