"""The schedule as a crontab: the common OnCalendar forms converted to cron lines.

Forms cron cannot express (years, seconds, time zones, last-day `~`, weekday AND day) are
refused with the reason; the systemd timers (`schedule install`) understand every form.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from backupctl.config import calendar
from backupctl.config.validate import Config
from backupctl.execute import Runner
from backupctl.schedule.units import Entry, entries, shared


class CronError(ValueError):
    """An OnCalendar expression that cron cannot express (the message says why)."""


_SHORTHANDS = {
    "minutely": "*-*-* *:*:00", "hourly": "*-*-* *:00:00", "daily": "*-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00", "weekly": "Mon *-*-* 00:00:00",
    "yearly": "*-01-01 00:00:00", "annually": "*-01-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00", "semiannually": "*-01,07-01 00:00:00",
}
_WEEKDAY_NUMBERS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 0}
_WEEKDAY_ORDER = [1, 2, 3, 4, 5, 6, 0]  # systemd's Mon..Sun


def normalize(expr: str, runner: Runner | None = None) -> str:
    """systemd's normalized form (`systemd-analyze calendar`), else a local expansion."""
    found = calendar.analyze(expr, runner) if runner is not None else None
    if found is not None and found.ok and found.normalized:
        return found.normalized
    if found is not None and not found.ok:
        raise CronError(f"invalid OnCalendar expression {expr!r}: {found.error}")
    tokens = expr.split()
    if tokens and tokens[0].lower() in _SHORTHANDS:
        tokens[0] = _SHORTHANDS[tokens[0].lower()]
    return " ".join(tokens)


def _weekdays(token: str) -> set[int]:
    days: set[int] = set()
    for part in token.split(","):
        first, _, last = part.partition("..")
        try:
            start = _WEEKDAY_ORDER.index(_WEEKDAY_NUMBERS[first[:3].lower()])
            end = _WEEKDAY_ORDER.index(_WEEKDAY_NUMBERS[(last or first)[:3].lower()])
        except KeyError:
            raise CronError(f"unknown weekday in {token!r}") from None
        if end < start:
            raise CronError(f"weekday range {part!r} runs backwards")
        days.update(_WEEKDAY_ORDER[start:end + 1])
    return days


def _values(field: str, *, low: int, high: int, name: str) -> set[int]:
    """The values a systemd calendar component matches (`*`, lists, `a..b`, `a/step`)."""
    values: set[int] = set()
    for part in field.split(","):
        match = re.fullmatch(r"(\*|\d+)(?:\.\.(\d+))?(?:/(\d+))?", part)
        if match is None:
            raise CronError(f"cron cannot express the {name} {field!r}")
        start = low if match.group(1) == "*" else int(match.group(1))
        end = int(match.group(2)) if match.group(2) else (
            high if match.group(3) or match.group(1) == "*" else start)
        step = int(match.group(3) or 1)
        if step < 1 or not low <= start <= high or not low <= end <= high or end < start:
            raise CronError(f"{name} {field!r} is out of range {low}..{high}")
        values.update(range(start, end + 1, step))
    return values


def _render(values: set[int], *, low: int, high: int) -> str:
    """A cron field for a set of values: `*`, `*/s`, `a-b/s`, or ranges and lists."""
    ordered = sorted(values)
    if ordered == list(range(low, high + 1)):
        return "*"
    if len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        if step > 1 and ordered == list(range(ordered[0], ordered[-1] + 1, step)):
            if ordered[0] == low and ordered[-1] + step > high:
                return f"*/{step}"
            return f"{ordered[0]}-{ordered[-1]}/{step}"
    parts: list[str] = []
    run = [ordered[0]]
    for value in ordered[1:]:
        if value == run[-1] + 1:
            run.append(value)
            continue
        parts.append(_span(run))
        run = [value]
    parts.append(_span(run))
    return ",".join(parts)


def _span(run: list[int]) -> str:
    if len(run) >= 3:
        return f"{run[0]}-{run[-1]}"
    return ",".join(str(v) for v in run)


def to_cron(expr: str, runner: Runner | None = None) -> str:
    """The five cron fields of an OnCalendar expression, or CronError saying why not."""
    normalized = normalize(expr, runner)
    tokens = normalized.split()
    weekdays: set[int] | None = None
    if tokens and tokens[0][:3].lower() in _WEEKDAY_NUMBERS:
        weekdays = _weekdays(tokens.pop(0))
    date, time = "*-*-*", "00:00:00"
    for token in tokens:
        if re.search(r"[A-Za-z]", token):
            raise CronError(f"cron cannot express {expr!r}: time zones ({token}) are not "
                            "supported by cron; it runs in the machine's local time")
        if ":" in token:
            time = token
        elif "-" in token or "~" in token:
            date = token
        else:
            raise CronError(f"cron cannot express {expr!r}: {token!r} is neither a date "
                            "nor a time")
    if "~" in date:
        raise CronError(f"cron cannot express {expr!r}: it has no 'last day of month' (~)")
    parts = date.split("-")
    if len(parts) == 2:
        parts = ["*", *parts]
    if len(parts) != 3:
        raise CronError(f"cron cannot express the date {date!r} of {expr!r}")
    year, month, day = parts
    if year != "*":
        raise CronError(f"cron cannot express {expr!r}: cron has no year field")
    clock = time.split(":")
    if len(clock) == 2:
        clock.append("00")
    if len(clock) != 3:
        raise CronError(f"cron cannot express the time {time!r} of {expr!r}")
    hour, minute, second = clock
    if "." in second or _values(second, low=0, high=59, name="second") != {0}:
        raise CronError(f"cron cannot express {expr!r}: cron runs on whole minutes only "
                        "(seconds must be 00)")
    days = _values(day, low=1, high=31, name="day")
    if weekdays is not None and days != set(range(1, 32)) and weekdays != set(range(7)):
        raise CronError(f"cron cannot express {expr!r}: with both a weekday and a day of "
                        "month cron runs on EITHER, systemd only on days matching BOTH")
    fields = [
        _render(_values(minute, low=0, high=59, name="minute"), low=0, high=59),
        _render(_values(hour, low=0, high=23, name="hour"), low=0, high=23),
        _render(days, low=1, high=31),
        _render(_values(month, low=1, high=12, name="month"), low=1, high=12),
        "*" if weekdays is None else _render(weekdays, low=0, high=6),
    ]
    return " ".join(fields)


def cron_command(entry: Entry, *, bin_path: str, config_path: Path, due: bool = False) -> str:
    """The crontab command: quoted for sh, `%` escaped (cron turns it into a newline).
    `due`: several orchestrators share the state (run only if still due)."""
    command = shlex.join([bin_path, "-c", str(config_path), *entry.argv,
                          *(["--due"] if due else []), entry.job])
    return command.replace("%", "\\%")


def crontab(config: Config, *, bin_path: str, user: str | None,
            runner: Runner | None) -> tuple[list[str], list[tuple[Entry, str]]]:
    """(crontab lines, [(entry, why cron cannot express it)])."""
    lines = [
        f"# backupctl schedule for {config.path.resolve()} (generated by "
        "`backupctl schedule cron`).",
        "# cron has no Persistent= (missed runs are not caught up) and no random delay;",
        "# prefer the systemd timers (`backupctl schedule install`) where systemd runs.",
        "SHELL=/bin/sh",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "BACKUPCTL_OPERATOR=scheduler",  # the runs' operator in the evidence: not a person
    ]
    problems: list[tuple[Entry, str]] = []
    who = f" {user}" if user else ""
    for entry in entries(config):
        try:
            fields = to_cron(entry.calendar, runner)
        except CronError as exc:
            problems.append((entry, str(exc)))
            continue
        command = cron_command(entry, bin_path=bin_path, config_path=config.path.resolve(),
                               due=shared(config))
        lines.append(f"{fields}{who} {command}")
    if config.settings.notify.channels:  # stale alerts, hourly (the notify-check timer)
        command = shlex.join([bin_path, "-c", str(config.path.resolve()), "notify", "check"])
        lines.append(f"7 * * * *{who} {command.replace('%', chr(92) + '%')}")
    return lines, problems
