"""Helpers for restore-test integration tests (real restic, real sshd, the real CLI)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace

NASTY_NAMES = ["スキャン 001.pdf", "a'b\"c", "x;y$(touch pwned)", "new\nline", "-rf",
               "back`tick`", "back\\slash", "star*?[x]", "starAx", "q?", "[ab]", "sp ace *"]


def fill(src: Path, *, big: int = 2 * 1024 * 1024) -> None:
    """Nasty names, a Japanese directory, small files, and one big random file."""
    src.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(NASTY_NAMES):
        (src / name).write_bytes(f"content {i} {name}\n".encode() * (i + 1))
    sub = src / "日本語 dir; $(touch pwned2)"
    sub.mkdir(exist_ok=True)
    (sub / "カルテ.txt").write_text("患者データ\n" * 100)
    for i in range(20):
        (src / f"small-{i:02d}.dat").write_bytes(os.urandom(1000 + i))
    (src / "big.bin").write_bytes(os.urandom(big))


def run_json(ws: Workspace, *args: str, timeout: float = 300) -> tuple[int, dict[str, Any], str]:
    """Run the CLI with --json; (exit code, the single job's result, stderr)."""
    proc = ws.run(*args, "--json", timeout=timeout)
    assert proc.stdout.strip(), proc.stderr
    payload = json.loads(proc.stdout)
    return proc.returncode, payload["jobs"][0], proc.stderr


def backup(ws: Workspace, name: str) -> dict[str, Any]:
    code, job, stderr = run_json(ws, "backup", name)
    assert code == 0, (job, stderr)
    return job


def packs(repo: Path) -> list[Path]:
    """Data pack files, largest first."""
    return sorted((p for p in (repo / "data").rglob("*") if p.is_file()),
                  key=lambda p: p.stat().st_size, reverse=True)


def leftovers(ws: Workspace) -> list[Path]:
    scratch = ws.scratch_dir
    return sorted(scratch.rglob("*")) if scratch.exists() else []


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~300 MiB of random data in 30 files: restores that take a few seconds."""
    root = tmp_path_factory.mktemp("bigsrc") / "data"
    root.mkdir()
    for i in range(30):
        (root / f"chunk-{i:02d}.bin").write_bytes(os.urandom(10 * 1024 * 1024))
    return root
