"""Fixtures of the restic version tests: both restic versions (tests/restic_versions.py),
a PostgreSQL source database and a scratch_dir the restore user can reach."""

from __future__ import annotations

from tests.integration.databases.conftest import scratch, source_db
from tests.restic_versions import restic_014, restic_018

__all__ = ["restic_014", "restic_018", "scratch", "source_db"]
