"""The recovery's proof on the target finds, compares and hashes names that are not UTF-8
(cp932 names from a Windows share) by their bytes, over the real sshd: a clean recovery
proves every file, one such file changed on the target is exit 3 naming it escaped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Sshd, Workspace
from tests.integration.recovery.conftest import ssh_target
from tests.integration.recovery.test_proof import CORRUPT

FOLDER, KARTE = "患者".encode("cp932"), "カルテ.txt".encode("cp932")
SHOWN = "\\x8a\\xb3\\x8e\\xd2/\\x83J\\x83\\x8b\\x83e.txt"  # 患者/カルテ.txt, escaped


def _job(ws: Workspace) -> bytes:
    """A job whose data sits under cp932 names (and one link to one), backed up; the big
    file's bytes path."""
    src = ws.root / "src" / "names"
    folder = os.fsencode(src) + b"/" + FOLDER
    os.makedirs(folder)
    victim = folder + b"/" + KARTE
    with open(victim, "wb") as handle:
        handle.write("患者データ\n".encode() * 2000)
    with open(os.fsencode(src) + b"/" + KARTE, "wb") as handle:
        handle.write(b"record\n")
    os.symlink(KARTE, folder + b"/link-" + KARTE)
    ws.job("names", source=src, verify={"sample": "all"})
    result = ws.run("backup", "names")
    assert result.returncode == 0, result.stdout + result.stderr
    return victim


def test_names_not_utf8_are_proven_on_the_target_by_their_bytes(
        workspace: Workspace, replacement: Sshd, tmp_path: Path) -> None:
    victim = _job(workspace)
    clean, broken = tmp_path / "clean", tmp_path / "broken"

    done = workspace.run("restore", "names", "--to", ssh_target(replacement, clean),
                         "--identity", str(replacement.identity), "--snapshot", "latest",
                         "--json")

    assert done.returncode == 0, done.stdout + done.stderr
    [job] = json.loads(done.stdout)["jobs"]
    assert job["result"] == "pass" and job["mismatches"] == [], job
    assert job["files_checked"] == 2 and job["unverifiable"] == [], job
    restored = os.fsencode(clean) + victim
    assert open(restored, "rb").read() == open(victim, "rb").read()  # noqa: SIM115

    failed = subprocess.run([sys.executable, "-c", CORRUPT, os.fsdecode(victim), "-c",
                             str(workspace.config), "restore", "names", "--to",
                             ssh_target(replacement, broken), "--identity",
                             str(replacement.identity), "--snapshot", "latest",
                             "--json"],
                            text=True, capture_output=True, timeout=300)

    assert failed.returncode == 3, failed.stdout + failed.stderr
    [job] = json.loads(failed.stdout)["jobs"]
    [(path, reason)] = [(m["path"], m["reason"]) for m in job["mismatches"]]
    assert reason == "hash" and path.endswith(SHOWN) and path.startswith(str(broken)), path
    assert SHOWN in job["error"]
