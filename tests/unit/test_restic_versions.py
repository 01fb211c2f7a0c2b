"""The suite's restic versions (tests/restic_versions.py): when Debian's package cannot be
had, the fixture says why, and fails under CI instead of skipping."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import conftest, restic_versions
from tests.restic_versions import Wanted

NOWHERE = Wanted("0.99", "trixie")  # no system restic is 0.99: Debian's archive is asked


@pytest.fixture
def dead_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(restic_versions, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(restic_versions, "MIRROR", f"http://127.0.0.1:{conftest.free_port()}/")
    return tmp_path / "cache"


def test_without_the_package_ci_fails_saying_why(dead_mirror: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"restic 0\.99 \(Debian trixie's package\) "
                       r"could not be had: .*apt-get"):
        restic_versions.fixture_for(NOWHERE)


def test_without_the_package_a_local_run_skips_saying_why(
        dead_mirror: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"could not be had"):
        restic_versions.fixture_for(NOWHERE)


def test_the_systems_restic_is_used_when_it_is_the_wanted_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "restic"
    fake.write_text("#!/bin/sh\necho 'restic 0.99.3 compiled with go1.25 on linux/amd64'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert restic_versions.obtain(NOWHERE) == fake
