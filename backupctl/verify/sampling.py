"""Deterministic, rotating samples: over successive backups every file gets hashed.

The files are ordered by SHA-256(seed, path), a seeded shuffle that does not depend on the
order restic lists them. That order is cut into `rounds` consecutive slices of the sample
size; backup number k hashes slice k mod rounds (the last slice wraps around to the start,
so every slice has exactly the sample size). A stable file set is fully covered after
`rounds` backups; files that come and go shift the cut only locally.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from backupctl.config.values import Sample


def seed_for(job: str) -> bytes:
    return f"backupctl-sample:{job}".encode()


def _key(seed: bytes, path: str) -> bytes:
    return hashlib.sha256(seed + b"\0" + path.encode("utf-8", "surrogateescape")).digest()


def rounds(sample: Sample, total: int) -> int:
    """How many backups one full rotation takes."""
    size = sample.size(total)
    return max(1, math.ceil(total / size)) if size else 1


def choose(paths: Sequence[str], *, sample: Sample, seed: bytes, round_no: int) -> list[str]:
    """The paths hashed in backup `round_no` (0, 1, 2, …): exactly sample.size(len) of them."""
    total = len(paths)
    size = sample.size(total)
    if size == 0:
        return []
    ordered = sorted(paths, key=lambda p: _key(seed, p))
    start = (round_no % rounds(sample, total)) * size
    return [ordered[(start + i) % total] for i in range(size)]
