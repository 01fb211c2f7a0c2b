"""Damage restic repositories on purpose (the tests' way of proving a verify can fail)."""

from __future__ import annotations

import os
from pathlib import Path


def flip_byte(path: Path) -> None:
    """Flip one bit in the middle of a file (restic makes repository files read-only)."""
    path.chmod(0o600)
    with path.open("r+b") as f:
        f.seek(path.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))


def largest_pack(repo: Path) -> Path:
    """The biggest data pack: file contents, not the small tree packs."""
    return max((p for p in (repo / "data").rglob("*") if p.is_file()),
               key=lambda p: p.stat().st_size)


def flip_byte_in_largest_pack(repo: Path) -> Path:
    pack = largest_pack(repo)
    flip_byte(pack)
    return pack
