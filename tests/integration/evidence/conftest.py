"""Fixtures for the evidence tests: a workspace with real runs, and a throwaway PostgreSQL."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml_helpers
from conftest import BACKUPCTL, Workspace, free_port, need

PG_BIN = Path("/usr/lib/postgresql/15/bin")


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
        return subprocess.run([*BACKUPCTL, "-c", str(self.config), *args], text=True,
                              capture_output=True, timeout=300, input=input, check=False)

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


@dataclass
class Postgres:
    port: int
    data: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL 15 cluster on a free loopback port (COMPONENTS.md)."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL 15 is not installed: run `make install`")
    need("runuser")
    data = Path(tempfile.mkdtemp(prefix="backupctl-pg-"))
    shutil.chown(data, "postgres", "postgres")
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_pg, str(PG_BIN / "initdb"), "-D", str(data / "db"), "-A", "trust",
                    "-U", "postgres", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-w", "-l",
                    str(data / "log"), "-o",
                    f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off",
                    "start"], check=True, capture_output=True)
    try:
        yield Postgres(port=port, data=data)
    finally:
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-m", "fast",
                        "-w", "stop"], capture_output=True, check=False)
        shutil.rmtree(data, ignore_errors=True)
