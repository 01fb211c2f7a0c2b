"""Fixtures for the evidence tests: a workspace with real runs, and a throwaway PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import cli_fork, yaml_helpers
from tests.conftest import Workspace


def _ok(ws: Workspace, *args: str) -> None:
    result = ws.run(*args)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def evidence_ws(tmp_path_factory: pytest.TempPathFactory, restic_template: Path) -> Workspace:
    """Real backups (two jobs, `--all` with concurrency 2), an offline copy, full and quick
    restore tests and one failed backup, all through the real CLI and restic."""
    root = tmp_path_factory.mktemp("evidence")
    ws = Workspace(root=root / "ws", repo_template=restic_template,
                   known_hosts=root / "ws" / "known_hosts")
    ws.root.mkdir()
    ws.known_hosts.touch()
    ws.write_config()
    usb = ws.root / "usb"
    usb.mkdir()
    ws.job("emr-db", description="電子カルテDBサーバ", verify={"rto": "1h"},
           copies=[{"name": "usb", "kind": "offline", "url": str(usb / "repo"),
                    "password_file": str(ws.password_file()), "max_age": "7d"}])
    ws.job("pacs", description="画像サーバ PACS")
    for name in ("emr-db", "pacs"):
        (ws.root / "src" / name / "data.txt").write_text(f"患者データ {name}\n")
    _ok(ws, "backup", "--all")
    (ws.root / "src" / "emr-db" / "more.txt").write_text("追記\n")
    _ok(ws, "backup", "--all")
    _ok(ws, "init", "emr-db", "--copies")
    _ok(ws, "media", "init", "emr-db", "usb")
    _ok(ws, "copy", "emr-db")
    _ok(ws, "verify", "emr-db", "--mode", "full")
    _ok(ws, "verify", "pacs")
    ws.job("broken", repo=ws.root / "repos" / "does-not-exist")
    assert ws.run("backup", "broken").returncode == 1
    return ws


@dataclass
class Clone:
    """A copy of a workspace's state under a second config (to tamper with safely)."""

    config: Path
    db: Path

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return cli_fork.run(["-c", str(self.config), *args], env=os.environ, timeout=300,
                            input=input)

    def sql(self, *statements: str) -> None:
        with sqlite3.connect(self.db) as conn:
            for statement in statements:
                conn.execute(statement)


@pytest.fixture
def clone(evidence_ws: Workspace, tmp_path: Path) -> Clone:
    state = tmp_path / "state"
    shutil.copytree(evidence_ws.state_dir, state)
    config = tmp_path / "backupctl.yaml"
    config.write_text(yaml_helpers.dump({
        "jobs_dir": str(evidence_ws.jobs_dir), "state_dir": str(state),
        "scratch_dir": str(tmp_path / "scratch"), "known_hosts": str(evidence_ws.known_hosts)}))
    return Clone(config=config, db=state / "state.db")


