"""A day of the strip: only successes ok, only failures failed, both mixed, none none."""

from __future__ import annotations

import pytest

from backupctl.web.cards import day_state


@pytest.mark.parametrize(("ok", "bad", "state"), [
    (1, 0, "ok"), (0, 2, "failed"), (1, 1, "mixed"), (0, 0, "none")])
def test_day_state(ok: int, bad: int, state: str) -> None:
    assert day_state(ok, bad) == state
