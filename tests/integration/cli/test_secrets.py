"""The repository password never leaks during a backup over SSH (SPEC §7, issue #3).

A watcher thread samples /proc/*/cmdline and /proc/*/environ of every process every few
milliseconds while the real CLI backs up over a real sshd with real restic.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import Sshd, Workspace

from tests.integration.cli.helpers import edit_job


@dataclass
class ProcWatcher:
    needle: bytes
    marker: bytes  # in the cmdline of the processes we want to see (the repository path)
    hits: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # cmdlines of interest that were observed
    sweeps: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    SUBCOMMANDS = frozenset({b"backup", b"snapshots", b"forget"})

    def run(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                for name in ("cmdline", "environ"):
                    try:
                        data = Path(f"/proc/{pid}/{name}").read_bytes()
                    except OSError:
                        continue
                    if self.needle in data:
                        self.hits.append(f"/proc/{pid}/{name}: {data[:200]!r}")
                    if name == "cmdline" and data.startswith(b"restic\0") and \
                            self.marker in data:
                        words = data.split(b"\0")
                        self.seen.update(w.decode() for w in words if w in self.SUBCOMMANDS)
            self.sweeps += 1
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()


def _files_containing(needle: bytes, roots: list[Path], *, since: float,
                      skip: set[Path]) -> list[str]:
    found = []
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = Path(dirpath) / name
                try:
                    st = path.lstat()
                    if (not path.is_file() or path.is_symlink() or st.st_mtime < since
                            or path in skip or st.st_size > 256 * 1024 * 1024):
                        continue
                    if needle in path.read_bytes():
                        found.append(str(path))
                except OSError:
                    continue
    return found


def test_password_never_in_proc_output_logs_or_remote_disk(
        ssh_workspace: Workspace, sshd: Sshd) -> None:
    # A password unique to this test, so other tests' files on this machine cannot match.
    password = f"leak-canary-{secrets.token_hex(16)}"
    pw_file = ssh_workspace.password_file("unique", password)
    repo = ssh_workspace.root / "repos" / "leak"
    subprocess.run(["restic", "init", "-q", "--repo", str(repo), "--password-file",
                    str(pw_file)], check=True, capture_output=True)
    src = ssh_workspace.root / "src" / "leak"
    src.mkdir(parents=True)
    ssh_workspace.job("leak", sshd=sshd, repo=repo, source=src,
                      repository={"url": str(repo), "password_file": str(pw_file)})
    edit_job(ssh_workspace, "leak", source={"before": ["true"], "after": ["true"]})
    (src / "big.bin").write_bytes(os.urandom(32 * 1024 * 1024))
    (src / "カルテ.txt").write_text("患者データ\n")
    watcher = ProcWatcher(password.encode(), str(repo).encode())
    thread = threading.Thread(target=watcher.run, daemon=True)
    started = time.time() - 1

    thread.start()
    try:
        result = ssh_workspace.run("-v", "backup", "leak", "--json")
    finally:
        watcher.stop()
        thread.join(timeout=30)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["jobs"][0]["snapshot_id"]
    # The watcher really saw the restic processes it was guarding.
    assert watcher.seen == {"backup", "snapshots", "forget"}, watcher.seen
    assert watcher.sweeps > 20
    assert watcher.hits == []
    assert password not in result.stdout + result.stderr
    assert "DEBUG" in result.stderr  # -v really logged every command
    assert password not in sshd.log.read_text()
    roots = [src, Path("/tmp"), Path.home() / ".cache" / "restic", ssh_workspace.root]
    assert _files_containing(password.encode(), roots, since=started, skip={pw_file}) == []
