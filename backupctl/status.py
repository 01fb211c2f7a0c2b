"""Exit codes: the one place they live (SPEC §4)."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0
    FAILED = 1  # could not complete
    USAGE = 2  # usage error or invalid configuration; nothing was run
    BAD_DATA = 3  # verification ran and found bad data
    LOCKED = 75  # the job is already running elsewhere

    @staticmethod
    def worst(statuses: list[ExitStatus]) -> ExitStatus:
        """The overall code of several jobs: bad data beats failure beats lock beats ok."""
        order = [ExitStatus.OK, ExitStatus.LOCKED, ExitStatus.FAILED, ExitStatus.BAD_DATA,
                 ExitStatus.USAGE]
        return max(statuses, key=order.index, default=ExitStatus.OK)
