"""From which job file a run came: its hash (the orchestrator's name is
`GlobalConfig.effective_orchestrator`).

With several orchestrators on one database every run records both, so `status` can show
which orchestrator ran what and flag orchestrators whose copies of a job file differ.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def job_file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a job file's bytes, as recorded with every run
    (`runs.job_file_sha256`). Comments and formatting count: two orchestrators whose files
    differ in any byte are flagged, which is what an admin who copies files around wants."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
