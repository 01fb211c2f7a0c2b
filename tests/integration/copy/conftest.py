"""Fixtures for copies: chattr dirs (the rclone REST servers are in tests/conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def chattr_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory where `chattr +i` works (root + CAP_LINUX_IMMUTABLE + ext4-like fs)."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed (e2fsprogs)")
    root = tmp_path / "sealed-area"
    root.mkdir()
    trial = root / "trial"
    trial.write_bytes(b"x")
    result = subprocess.run(["chattr", "+i", str(trial)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"chattr +i is not permitted here ({result.stderr.strip()}): needs root "
                    "with CAP_LINUX_IMMUTABLE on a filesystem that supports it")
    subprocess.run(["chattr", "-i", str(trial)], check=True)
    trial.unlink()
    yield root
    subprocess.run(["chattr", "-R", "-i", str(root)], capture_output=True)
