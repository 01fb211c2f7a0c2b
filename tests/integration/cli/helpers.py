"""Helpers for CLI integration tests: edit a written job file, read the state database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests import yaml_helpers
from tests.conftest import Workspace, restic


def edit_job(ws: Workspace, name: str, **sections: dict[str, Any]) -> dict[str, Any]:
    """Merge `sections` (e.g. source={"before": [...]}) into jobs/NAME.yaml."""
    path = ws.jobs_dir / f"{name}.yaml"
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path.write_text(yaml_helpers.dump(data))
    return data


def runs(ws: Workspace) -> list[dict[str, Any]]:
    """Every row of the runs table (empty when there is no state database yet)."""
    db = ws.state_dir / "state.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM runs ORDER BY id")]


def snapshot_count(repo: Path) -> int:
    return len(json.loads(restic(repo, "snapshots", "--json").stdout))
