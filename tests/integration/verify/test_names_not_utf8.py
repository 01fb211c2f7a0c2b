"""A file whose name is not valid UTF-8 (any local user can make one) is a listed finding,
never bad data and never silently left out: restic 0.14's JSON shows it with U+FFFD."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Sshd, Workspace

from .conftest import backup, fill, run_json

BAD_NAME = b"\xff\xfe-karte-\xe3.txt"  # not UTF-8; a Shift_JIS-era file server has many


def _source(ws: Workspace, name: str) -> Path:
    src = ws.root / "src" / name
    fill(src, big=64 * 1024)
    fd = os.open(os.fsencode(src) + b"/" + BAD_NAME, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"a patient's record under an unreadable name\n")
    os.close(fd)
    return src


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_a_name_that_is_not_utf8_is_listed_and_the_rest_is_proven(workspace: Workspace,
                                                                   mode: str) -> None:
    src = _source(workspace, f"names-{mode}")
    workspace.job(f"names-{mode}", source=src, verify={"sample": "all"})
    made = backup(workspace, f"names-{mode}")
    assert made["manifest"]["unverifiable_count"] == 1

    code, result, stderr = run_json(workspace, "verify", f"names-{mode}", "--mode", mode)

    assert code == 0, (result, stderr)
    assert result["mismatches"] == [], "never a missing or changed file"
    (name,) = result["unverifiable"]
    assert "\ufffd" in name and name.endswith("-karte-\ufffd.txt")
    others = sum(1 for p in src.rglob("*") if p.is_file()) - 1
    assert result["files_checked"] == others
    assert float(result["coverage"]) < 1.0, "the unverifiable file is not counted as covered"
    if mode == "full":
        assert result["restic_invocations"] == 2, "told by the backup's listing digest"
    proc = workspace.run("verify", f"names-{mode}", "--mode", mode)
    assert "1 name(s) not verifiable (not UTF-8)" in proc.stderr


def test_over_ssh_too(ssh_workspace: Workspace, sshd: Sshd) -> None:
    src = _source(ssh_workspace, "names-ssh")
    ssh_workspace.job("names-ssh", source=src, sshd=sshd, verify={"sample": "all"})
    backup(ssh_workspace, "names-ssh")
    code, result, stderr = run_json(ssh_workspace, "verify", "names-ssh", "--mode", "full")
    assert code == 0, (result, stderr)
    assert len(result["unverifiable"]) == 1 and result["mismatches"] == []
