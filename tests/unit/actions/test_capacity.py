"""Spreading full restore tests: the fit rule (pure)."""

from __future__ import annotations

from pathlib import Path

from backupctl.actions import capacity

MIB = 1 << 20
SCRATCH = Path("/var/tmp/backupctl")


def test_a_restore_that_fits_with_the_margin_is_taken() -> None:
    fit = capacity.decide(job="pacs", needed=100 * MIB, free=200 * MIB, scratch_dir=SCRATCH,
                          margin=64 * MIB)
    assert fit.fits


def test_a_restore_that_does_not_fit_is_skipped_and_stays_due() -> None:
    fit = capacity.decide(job="pacs", needed=150 * MIB, free=200 * MIB, scratch_dir=SCRATCH,
                          margin=64 * MIB)
    assert not fit.fits
    assert fit.reason == ("pacs: full restore test skipped on this orchestrator: it needs "
                          "about 150.0 MiB (+64.0 MiB margin) in scratch_dir "
                          "/var/tmp/backupctl, 200.0 MiB free; it stays due for an "
                          "orchestrator with more room")


def test_an_unknown_size_is_attempted() -> None:
    fit = capacity.decide(job="pacs", needed=None, free=0, scratch_dir=SCRATCH)
    assert fit.fits and "not known" in fit.reason


def test_free_bytes_of_a_scratch_dir_not_created_yet(tmp_path: Path) -> None:
    assert capacity.free_bytes(tmp_path / "not" / "yet") > 0
