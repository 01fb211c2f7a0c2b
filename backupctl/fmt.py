"""How durations, ages and sizes read to a person: the one set of formatters.

Config durations (`7d`, `15m`) are the job file's own syntax and live with the schema
(`config.values.format_duration`); these are for messages, tables and reports.
"""

from __future__ import annotations


def size(n: int) -> str:
    """Bytes in binary units: `512 B`, `1.5 MiB`, `3.2 GiB`."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def age(seconds: float | None) -> str:
    """A compact age for tables: `45s`, `12.5m`, `3.0h`, `2.1d`; `-` when unknown."""
    if seconds is None:
        return "-"
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds / length:.1f}{unit}"
    return f"{seconds:.0f}s"


def duration(seconds: float | None, *, lang: str = "en") -> str:
    """A measured duration as a report shows it: `4.2s`, `12m05s`, `1h02m`; ja: `12分5秒`."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if lang == "ja":
        if seconds < 10:
            return f"{seconds:.1f}秒"
        parts = [f"{hours}時間" if hours else "", f"{minutes}分" if minutes else "",
                 f"{secs}秒" if secs or not (hours or minutes) else ""]
        return "".join(parts)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def ms_to_seconds(ms: int | None) -> float | None:
    """Stored milliseconds (records hold no floats) as seconds for people and metrics."""
    return None if ms is None else ms / 1000
