"""The value types of the configuration: durations, percentages, samples, job names, and the
strict base model every section derives from (backupctl.config.schema, .notify)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Annotated, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer

JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")


def parse_duration(value: object) -> int:
    """`30s`, `15m`, `2h`, `7d` → seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match and int(match.group(1)) > 0:
            return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(f"invalid duration {value!r}: use a positive number with s, m, h or d "
                     "(e.g. 30s, 15m, 2h, 7d)")


def format_duration(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def parse_percent(value: object) -> float:
    """`5%` → 0.05 (0 < p ≤ 100)."""
    if isinstance(value, str):
        match = _PERCENT.match(value.strip())
        if match and 0 < float(match.group(1)) <= 100:
            return float(match.group(1)) / 100
    raise ValueError(f"invalid percentage {value!r}: use a number above 0 and at most 100 "
                     "followed by % (e.g. 5%)")


Duration = Annotated[int, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
Percent = Annotated[float, BeforeValidator(parse_percent)]


def duration_within(low: int, high: int) -> AfterValidator:
    """Bounds of a Duration, said in durations (`use 1s to 1h`) rather than in seconds."""

    def check(seconds: int) -> int:
        if not low <= seconds <= high:
            raise ValueError(f"{format_duration(seconds)} is out of range: use "
                             f"{format_duration(low)} to {format_duration(high)}")
        return seconds

    return AfterValidator(check)


class Sample(BaseModel):
    """How many files a backup hashes for verification: a share, a count, or all."""

    model_config = ConfigDict(frozen=True)
    fraction: float | None = None
    count: int | None = None

    def size(self, total: int) -> int:
        if self.count is not None:
            return min(self.count, total)
        fraction = 1.0 if self.fraction is None else self.fraction
        return min(total, max(1, round(total * fraction))) if total else 0


def parse_sample(value: object) -> Sample:
    if isinstance(value, Sample):
        return value
    if value == "all":
        return Sample(fraction=1.0)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a sample count cannot be negative")
        return Sample(count=value)
    if isinstance(value, str):
        return Sample(fraction=parse_percent(value))
    raise ValueError(f"invalid sample {value!r}: use a percentage (5%), a count (200) or all")


def _sample_out(sample: Sample) -> str | int:
    if sample.count is not None:
        return sample.count
    return "all" if sample.fraction == 1.0 else f"{(sample.fraction or 0) * 100:g}%"


SampleSpec = Annotated[Sample, BeforeValidator(parse_sample), PlainSerializer(_sample_out)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


def repeated(names: Iterable[str]) -> str:
    """The names given more than once, sorted and comma-separated ("" when none)."""
    return ", ".join(sorted(n for n, count in Counter(names).items() if count > 1))


def named(items: Iterable[N], name: str) -> N:
    """The item called `name` (KeyError when there is none)."""
    for item in items:
        if item.name == name:
            return item
    raise KeyError(name)
