"""restic/run.py: the version cache (one `restic version` per binary)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backupctl.execute.fake import FakeRunner
from backupctl.restic.run import cached_version


@pytest.fixture
def restic_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    binary = bin_dir / "restic"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return binary


def _runner(version: str) -> FakeRunner:
    runner = FakeRunner(host="local")
    runner.on("version", stdout=f"restic {version} compiled with go1.19.8\n".encode())
    return runner


def test_the_version_is_asked_once_per_binary(restic_on_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "restic-version.json"
    first = _runner("0.14.0")
    assert cached_version(first, cache) == "0.14.0"
    assert cached_version(first, cache) == "0.14.0"
    assert len(first.calls) == 1

    restic_on_path.write_text("#!/bin/sh\n# upgraded\n")  # another size and mtime
    os.utime(restic_on_path, ns=(1, 1))
    upgraded = _runner("0.18.0")
    assert cached_version(upgraded, cache) == "0.18.0"
    assert len(upgraded.calls) == 1


def test_an_unknown_version_is_not_cached(restic_on_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "restic-version.json"
    broken = FakeRunner(host="local")
    broken.on("version", returncode=1)
    assert cached_version(broken, cache) == "unknown"
    assert not cache.exists()
    assert cached_version(_runner("0.14.0"), cache) == "0.14.0"


def test_a_damaged_cache_is_asked_again(restic_on_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "restic-version.json"
    cache.write_text("{not json")
    assert cached_version(_runner("0.14.0"), cache) == "0.14.0"
    assert "0.14.0" in cache.read_text()
