"""Fixtures for copies: real rclone restic REST servers (append-only or not), chattr dirs."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, need


@dataclass
class RestServer:
    """`rclone serve restic` on loopback serving `root` (a restic repository)."""

    root: Path
    port: int
    append_only: bool
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"rest:http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rclone exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"rclone did not listen on {port}: {log.read_text()}")


@pytest.fixture
def rest_server(tmp_path: Path) -> Iterator[Callable[..., RestServer]]:
    """Factory: rest_server(repo_dir, append_only=True) → a running server (stopped after)."""
    rclone = need("rclone")
    started: list[RestServer] = []

    def start(root: Path, *, append_only: bool = True) -> RestServer:
        port = free_port()
        log = tmp_path / f"rclone-{port}.log"
        argv = [rclone, "serve", "restic", "--addr", f"127.0.0.1:{port}", "--config",
                "/dev/null", str(root)]
        if append_only:
            argv.insert(3, "--append-only")
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        server = RestServer(root, port, append_only, proc)
        started.append(server)
        _wait_port(port, proc, log)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def chattr_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory where `chattr +i` works (root + CAP_LINUX_IMMUTABLE + ext4-like fs)."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed (e2fsprogs)")
    root = tmp_path / "sealed-area"
    root.mkdir()
    trial = root / "trial"
    trial.write_bytes(b"x")
    result = subprocess.run(["chattr", "+i", str(trial)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"chattr +i is not permitted here ({result.stderr.strip()}): needs root "
                    "with CAP_LINUX_IMMUTABLE on a filesystem that supports it")
    subprocess.run(["chattr", "-i", str(trial)], check=True)
    trial.unlink()
    yield root
    subprocess.run(["chattr", "-R", "-i", str(root)], capture_output=True)
