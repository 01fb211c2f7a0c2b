"""Who ran a job, and from which job file: the orchestrator's name and the file's hash.

With several orchestrators on one database every run records both, so `status` can show
which orchestrator ran what and flag orchestrators whose copies of a job file differ.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from backupctl.config.schema import GlobalConfig


def orchestrator(settings: GlobalConfig) -> str:
    """The configured `orchestrator:`, else this machine's host name."""
    return settings.effective_orchestrator


def job_file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a job file's bytes, as recorded with every run
    (`runs.job_file_sha256`). Comments and formatting count: two orchestrators whose files
    differ in any byte are flagged, which is what an admin who copies files around wants."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
