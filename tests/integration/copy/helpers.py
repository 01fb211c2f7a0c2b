"""Small helpers shared by the copy integration tests."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import PASSWORD, Workspace, restic


def run_json(ws: Workspace, *args: str, timeout: float = 300) -> tuple[int, dict[str, Any], str]:
    proc = ws.run(*args, "--json", timeout=timeout)
    assert PASSWORD not in proc.stdout + proc.stderr
    try:
        payload = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError(f"not one JSON object: {proc.stdout!r}\n{proc.stderr}") from exc
    return proc.returncode, payload, proc.stderr


def repo_at(ws: Workspace, target: Path) -> Path:
    """An initialised repository (copied from the session template) at `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ws.repo_template, target)
    return target


def copy_entry(name: str, kind: str, url: str | Path, ws: Workspace, **extra: Any
               ) -> dict[str, Any]:
    return {"name": name, "kind": kind, "url": str(url),
            "password_file": str(ws.password_file()), "max_age": "7d", **extra}


def snapshot_times(repo: str | Path) -> list[str]:
    """The backup snapshots a repository holds (not the evidence anchored in it)."""
    return sorted(s["time"] for s in json.loads(restic(repo, "snapshots", "--json").stdout)
                  if "backupctl-evidence" not in (s.get("tags") or []))


def touch_source(ws: Workspace, job: str, name: str = "data.bin", size: int = 4096) -> None:
    (ws.root / "src" / job / name).write_bytes(os.urandom(size))


def job_status(ws: Workspace, job: str) -> dict[str, Any]:
    code, payload, stderr = run_json(ws, "status")
    assert code == 0, stderr
    return next(j for j in payload["jobs"] if j["job"] == job)


def copy_of(result: dict[str, Any], name: str) -> dict[str, Any]:
    job = result["jobs"][0]
    return next(c for c in job["copies"] if c["copy"] == name)
