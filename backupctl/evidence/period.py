"""A report's period: calendar days in the orchestrator's time zone, and the evidence records
finished in it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from backupctl.clock import iso
from backupctl.errors import UsageError
from backupctl.evidence import chain
from backupctl.fmt import moment


@dataclass(frozen=True)
class Period:
    """Calendar days `start`..`end` (inclusive) in time zone `tz`."""

    start: date
    end: date
    tz: tzinfo

    @classmethod
    def parse(cls, start: str, end: str, *, tz: tzinfo | None = None) -> Period:
        zone = tz or datetime.now().astimezone().tzinfo
        assert zone is not None
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError as exc:
            raise UsageError(f"dates are YYYY-MM-DD: {exc}") from None
        if last < first:
            raise UsageError(f"--to {end} is before --from {start}")
        return cls(first, last, zone)

    def bounds(self) -> tuple[str, str]:
        """[start, end + 1 day) as UTC ISO strings, comparable with stored times."""
        low = datetime.combine(self.start, time(), self.tz)
        high = datetime.combine(self.end + timedelta(days=1), time(), self.tz)
        return iso(low), iso(high)

    def contains(self, stamp: str | None) -> bool:
        """Whether a stored time is in the period; one that is not a time (a record altered
        in the database, which the chain's verification names) is in none."""
        low, high = self.bounds()
        at = moment(stamp)
        return at is not None and low <= iso(at) < high

    def local(self, stamp: str | None) -> datetime | None:
        """A stored time in the period's zone; None when there is none or it is not a time."""
        at = moment(stamp)
        return at.astimezone(self.tz) if at is not None else None

    def months(self) -> list[str]:
        out, cursor = [], self.start.replace(day=1)
        while cursor <= self.end:
            out.append(cursor.strftime("%Y-%m"))
            cursor = (cursor + timedelta(days=32)).replace(day=1)
        return out

    def offset(self) -> str:
        return datetime.combine(self.start, time(), self.tz).strftime("%z")





def slice_for(entries: Sequence[chain.Entry], period: Period) -> list[chain.Entry]:
    """The contiguous run of records from the first to the last one finished in `period`.

    Records are appended in commit order, so a record finished just inside the period can
    sit after one finished just outside it; the slice keeps such stragglers so that it
    links without gaps.
    """
    inside = [i for i, e in enumerate(entries) if period.contains(e.record.get("finished_at"))]
    return list(entries[inside[0]:inside[-1] + 1]) if inside else []
