"""Helpers for drill tests: a backed-up job, the state database, a tmux session."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKUPCTL, Workspace, need

STEPS = ["EMRサービスを起動する", "テスト患者のカルテを開いて表示を確認する"]


def check_commands(src: Path) -> list[str]:
    """The job's verify.commands: application checks on the restored tree."""
    return [f"test -s {{restored}}{src}/emr.dump",
            f"grep -q 患者 {{restored}}{shlex.quote(str(src))}/'カルテ dir'/'患者 001.txt'"]


def drill_job(ws: Workspace, name: str = "emr-db", **overrides: Any) -> Path:
    """A local job with files, checks and manual steps, backed up once; returns its source."""
    src = ws.root / "src" / name
    (src / "カルテ dir").mkdir(parents=True)
    (src / "カルテ dir" / "患者 001.txt").write_text("患者データ\n" * 50)
    (src / "emr.dump").write_bytes(os.urandom(3 * 1024 * 1024))
    for i in range(10):
        (src / f"f{i}.dat").write_bytes(os.urandom(1000 + i))
    settings: dict[str, Any] = {
        "verify": {"sample": "all", "commands": check_commands(src)},
        "runbook": {"steps": STEPS}}
    settings.update(overrides)
    ws.job(name, source=src, **settings)
    result = ws.run("backup", name)
    assert result.returncode == 0, result.stderr
    return src


def rows(ws: Workspace, sql: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(ws.state_dir / "state.db")
    db.row_factory = sqlite3.Row
    try:
        return list(db.execute(sql))
    finally:
        db.close()


def drill_evidence(ws: Workspace) -> list[dict[str, Any]]:
    found = []
    for row in rows(ws, "SELECT * FROM evidence WHERE kind = 'drill' ORDER BY seq"):
        record = dict(row)
        record["details"] = json.loads(record["details"])
        found.append(record)
    return found


def scratch_leftovers(ws: Workspace) -> list[Path]:
    return sorted(ws.scratch_dir.iterdir()) if ws.scratch_dir.exists() else []


@dataclass
class Tmux:
    """A real terminal: the drill runs in tmux; the test reads the screen and types."""

    name: str
    exit_file: Path

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-J", "-S", "-200", "-t",
                               self.name], capture_output=True, text=True, check=True).stdout

    def wait_for(self, text: str, *, count: int = 1, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if screen.count(text) >= count:
                return screen
            if self.exit_file.exists():
                break
            time.sleep(0.2)
        raise AssertionError(f"{text!r} (×{count}) never appeared:\n{self.screen()}")

    def type(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def answer(self, text: str) -> None:
        self.type("-l", text)
        self.type("Enter")

    def exit_code(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exit_file.exists() and self.exit_file.read_text().strip():
                return int(self.exit_file.read_text())
            time.sleep(0.2)
        raise AssertionError(f"the drill did not finish:\n{self.screen()}")


@pytest.fixture
def tmux(workspace: Workspace, tmp_path: Path) -> Iterator[Any]:
    """start(*args) runs `backupctl -c CONFIG *args` in a new detached tmux session."""
    need("tmux")
    sessions: list[str] = []

    def start(*args: str) -> Tmux:
        name = f"drill-{os.getpid()}-{len(sessions)}-{tmp_path.name}"[:60]
        exit_file = tmp_path / f"{name}.exit"
        argv = shlex.join([*BACKUPCTL, "-c", str(workspace.config), *args])
        # The exit code lands in a file; the session stays until the test ends it. The trap
        # keeps sh alive through Ctrl-C (a handler, unlike '', is not inherited by the child).
        script = (f"trap 'true' INT; cd {shlex.quote(os.getcwd())}; {argv}; "
                  f"echo $? > {exit_file}; sleep 600")
        env = {k: v for k, v in os.environ.items() if k != "INVOCATION_ID"}
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "200", "-y", "50",
                        "sh", "-c", script], check=True, env=env)
        sessions.append(name)
        return Tmux(name, exit_file)

    yield start
    for name in sessions:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, check=False)
