"""state/records.py: the RTO is judged once, when a restore test's record is made."""

from __future__ import annotations

import subprocess
import sys

import pytest

from backupctl.state.records import Proof, VerifyDetails, over_rto


@pytest.mark.parametrize(("restore_ms", "rto_seconds", "over"), [
    (3_600_000, 3600, False), (3_600_001, 3600, True), (None, 3600, None), (10, None, None)])
def test_the_one_rto_rule(restore_ms: int | None, rto_seconds: int | None,
                          over: bool | None) -> None:
    assert over_rto(restore_ms, rto_seconds) is over


def test_a_new_record_stores_the_decision() -> None:
    details = VerifyDetails(mode="full", restore_ms=7_300_000, rto_seconds=7200)
    assert details.rto_exceeded is True
    assert details.to_json()["rto_exceeded"] is True


def test_a_stored_decision_is_read_as_it_was_made() -> None:
    stored = {"restore_ms": 7_300_000, "rto_seconds": 7200, "rto_exceeded": False}
    assert Proof.model_validate(stored).rto_exceeded is False


def test_an_older_record_is_judged_from_its_own_numbers() -> None:
    assert Proof.model_validate({"restore_seconds": 7300.0, "rto_seconds": 7200}).rto_exceeded



def test_importing_the_records_builds_no_model_until_one_is_used() -> None:
    """Every command imports every record model and uses a few (issue 25): a model's
    validator is built when it is first used (in a fresh interpreter: none is yet)."""
    code = ("from backupctl.state import records as r; "
            "models = [m for m in vars(r).values() if isinstance(m, type) "
            "and issubclass(m, r.Record)]; "
            "print(len(models), sum(m.__pydantic_complete__ for m in models))")
    count, built = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                  text=True, timeout=120).stdout.split()
    assert int(count) > 10 and built == "0"
    assert VerifyDetails.model_validate({"restore_ms": 5}).restore_ms == 5  # built on use
