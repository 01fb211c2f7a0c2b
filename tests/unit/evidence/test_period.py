"""A report's period: local calendar days, and the slice of the chain that links."""

from __future__ import annotations

from datetime import UTC, date

import pytest

from backupctl.errors import UsageError
from backupctl.evidence import chain
from backupctl.evidence.period import Period, slice_for


def test_slice_keeps_stragglers_so_it_links() -> None:
    def entry(seq: int, finished: str) -> chain.Entry:
        return chain.Entry(seq, {"finished_at": finished, "hash": str(seq)})

    entries = [entry(1, "2026-01-31T23:00:00+00:00"), entry(2, "2026-02-01T00:00:01+00:00"),
               entry(3, "2026-01-31T23:59:59+00:00"), entry(4, "2026-02-01T12:00:00+00:00"),
               entry(5, "2026-02-02T00:00:00+00:00")]
    period = Period(date(2026, 2, 1), date(2026, 2, 1), UTC)
    # seq 3 finished before the period but was appended inside it: kept, so 2→3→4 links.
    assert [e.seq for e in slice_for(entries, period)] == [2, 3, 4]


def test_bad_dates_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        Period.parse("2026-02-30", "2026-03-01")
    with pytest.raises(UsageError):
        Period.parse("2026-03-01", "2026-02-01")
