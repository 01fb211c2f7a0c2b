"""ExitStatus.worst: the overall exit code of several jobs (SPEC §4)."""

from __future__ import annotations

import pytest

from backupctl.status import ExitStatus

OK, FAILED, USAGE, BAD, LOCKED = (ExitStatus.OK, ExitStatus.FAILED, ExitStatus.USAGE,
                                  ExitStatus.BAD_DATA, ExitStatus.LOCKED)


def test_codes_are_the_contract() -> None:
    assert [int(s) for s in (OK, FAILED, USAGE, BAD, LOCKED)] == [0, 1, 2, 3, 75]


@pytest.mark.parametrize(("statuses", "worst"), [
    ([], OK),
    ([OK, OK], OK),
    ([OK, LOCKED], LOCKED),
    ([LOCKED, FAILED, OK], FAILED),
    ([FAILED, BAD], BAD),
    ([BAD, LOCKED, FAILED, OK], BAD),
    ([OK, USAGE, BAD], USAGE),
])
def test_worst(statuses: list[ExitStatus], worst: ExitStatus) -> None:
    assert ExitStatus.worst(statuses) is worst
    assert ExitStatus.worst(list(reversed(statuses))) is worst


def test_a_failure_is_never_hidden_by_a_success() -> None:
    for status in (FAILED, BAD, LOCKED, USAGE):
        assert ExitStatus.worst([OK] * 5 + [status] + [OK] * 5) is status
