"""How durations, ages, times and sizes read to a person: the one set of formatters.

Every language-dependent rendering of a duration (`2時間5分` / `2h05m`), a relative age
(`3時間前` / `3 hours ago`) and a local time (to the minute, in the configured time zone)
lives here, so a mail, a report, the runbook, `status` and the status page say the same
thing. Config durations (`7d`, `15m`) are the job file's own syntax and live with the
schema (`config.values.format_duration`). Stored times stay ISO 8601 UTC (`clock.iso`).
"""

from __future__ import annotations

import os
import unicodedata
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LANGS = ("ja", "en")
DEFAULT_LANG = "ja"


def lang_or_default(lang: str | None) -> str:
    """`lang` when it is one of LANGS, else the default (Japanese: the hospital's)."""
    return lang if lang in LANGS else DEFAULT_LANG


def size(n: int) -> str:
    """Bytes in binary units: `512 B`, `1.5 MiB`, `3.2 GiB`."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float | None, lang: str = "en") -> str:
    """A measured duration, its two largest units: en `4.2s`, `45s`, `12m05s`, `2h05m`,
    `3d04h`; ja `4.2秒`, `45秒`, `12分5秒`, `2時間5分`, `3日4時間`; `–` when unknown."""
    if seconds is None:
        return "–"
    if seconds < 10:
        return f"{seconds:.1f}秒" if lang == "ja" else f"{seconds:.1f}s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if lang == "ja":
        pairs = ((days, "日", hours, "時間"), (hours, "時間", minutes, "分"),
                 (minutes, "分", secs, "秒"))
        for big, big_unit, small, small_unit in pairs:
            if big:
                return f"{big}{big_unit}" + (f"{small}{small_unit}" if small else "")
        return f"{secs}秒"
    if days:
        return f"{days}d{hours:02d}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


_UNITS_EN = {"d": ("day", "days"), "h": ("hour", "hours"), "m": ("minute", "minutes")}
_UNITS_JA = {"d": "日", "h": "時間", "m": "分"}


def ago(seconds: float | None, lang: str = "en") -> str:
    """A relative age in one unit, rounded down: `3時間前` / `3 hours ago`, `2日前` /
    `2 days ago`; a negative age is in the future (`3時間後` / `in 3 hours`); under a
    minute `たった今` / `just now`; `–` when unknown."""
    if seconds is None:
        return "–"
    future, span = seconds < 0, abs(seconds)
    if span < 60:
        return "たった今" if lang == "ja" else "just now"
    count, unit = next((int(span // length), unit) for unit, length in
                       (("d", 86400), ("h", 3600), ("m", 60)) if span >= length)
    if lang == "ja":
        return f"{count}{_UNITS_JA[unit]}{'後' if future else '前'}"
    word = _UNITS_EN[unit][count != 1]
    return f"in {count} {word}" if future else f"{count} {word} ago"


def moment(value: datetime | str | None) -> datetime | None:
    """A stored ISO 8601 string (or a datetime) as an aware datetime; None if unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def local(value: datetime | str | None, tz: tzinfo) -> str:
    """A time on the wall clock of `tz`, to the minute: `2026-12-08 01:04`; `–` if none."""
    when = moment(value)
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when is not None else "–"


def local_ago(value: datetime | str | None, *, now: datetime, tz: tzinfo,
              lang: str = "en") -> str:
    """Local time and relative age: `2026-12-08 01:04（3時間前）` / `2026-12-08 01:04
    (3 hours ago)`; `–` if none."""
    when = moment(value)
    if when is None:
        return "–"
    relative = ago((now - when).total_seconds(), lang)
    return f"{local(when, tz)}（{relative}）" if lang == "ja" else f"{local(when, tz)} ({relative})"


def zone_label(tz: tzinfo, at: datetime | None = None) -> str:
    """The zone as a person reads it: `Asia/Tokyo, UTC+09:00`, `UTC+01:00` when unnamed."""
    offset = (at or datetime.now(UTC)).astimezone(tz).strftime("%z")
    shown = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    name = getattr(tz, "key", None)
    if not name and shown == "UTC+00:00":
        return "UTC"
    return f"{name}, {shown}" if name else shown


def zone(name: str | None = None) -> tzinfo:
    """The IANA zone `name`, or this machine's (TZ, then /etc/localtime, then the C
    library's fixed offset). Raises ZoneInfoNotFoundError for an unknown name."""
    if name:
        if name != name.strip() or name.startswith(("/", ".")) or ".." in name:
            raise ZoneInfoNotFoundError(name)  # never a path into the file system
        try:
            return ZoneInfo(name)
        except (ValueError, OSError):  # "Asia" is a directory, "a\0b" no key at all
            raise ZoneInfoNotFoundError(name) from None
    return system_zone()


def system_zone() -> tzinfo:
    """This machine's zone, by name where it has one (so DST changes are followed)."""
    for candidate in (os.environ.get("TZ", "").removeprefix(":"), _localtime_name()):
        if candidate:
            try:
                return zone(candidate)
            except ZoneInfoNotFoundError:
                continue
    found = datetime.now().astimezone().tzinfo
    return found if found is not None else UTC


def _localtime_name() -> str | None:
    """`Asia/Tokyo` from the /etc/localtime symbolic link (Debian's way), else None."""
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return None
    _, sep, name = target.partition("/zoneinfo/")
    return name if sep and name else None


def one_line(text: str) -> str:
    """`text` as one printable line: control and format characters (and line and paragraph
    separators) as `\\x0a`/`\\u202e`, so a name chosen by someone else (a file, a table)
    cannot start a line of its own, move the cursor or recolour a terminal."""
    if text.isprintable():  # the common case: nothing to escape (isprintable is strict)
        return text
    return "".join(_escaped(c) for c in text)


def _escaped(char: str) -> str:
    if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def ms_to_seconds(ms: int | None) -> float | None:
    """Stored milliseconds (records hold no floats) as seconds for people and metrics."""
    return None if ms is None else ms / 1000
