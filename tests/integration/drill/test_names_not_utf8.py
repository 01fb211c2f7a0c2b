"""A drill restores and proves names that are not UTF-8 (cp932) by their bytes: counted in
the restored tree, hashed against the source; one changed in the repository is exit 3
named escaped. Real restic, the real CLI."""

from __future__ import annotations

import json
import os
from typing import Any

from tests.conftest import Workspace
from tests.repo_damage import flip_byte_in_largest_pack

FOLDER, KARTE = "患者".encode("cp932"), "カルテ.txt".encode("cp932")
SHOWN = "\\x8a\\xb3\\x8e\\xd2/\\x83J\\x83\\x8b\\x83e.txt"  # 患者/カルテ.txt, escaped


def test_a_drill_proves_cp932_names_by_their_bytes(workspace: Workspace) -> None:
    src = workspace.root / "src" / "names"
    folder = os.fsencode(src) + b"/" + FOLDER
    os.makedirs(folder)
    for path, data in ((folder + b"/" + KARTE, os.urandom(2 * 1024 * 1024)),
                       (os.fsencode(src) + b"/" + KARTE, b"record\n")):
        with open(path, "wb") as handle:
            handle.write(data)
    workspace.job("names", source=src, verify={"sample": "all"})
    assert workspace.run("backup", "names").returncode == 0

    def drill() -> tuple[int, dict[str, Any]]:
        proc = workspace.run("drill", "names", "--yes", "--operator", "test", "--json")
        assert proc.stdout.strip(), proc.stderr
        return proc.returncode, json.loads(proc.stdout)["jobs"][0]

    code, result = drill()
    assert code == 0, result
    assert (result["files_checked"], result["files_restored"]) == (2, 2), result
    assert result["mismatches"] == [] and result["unverifiable"] == []

    flip_byte_in_largest_pack(workspace.root / "repos" / "names")  # the big cp932 file
    code, result = drill()
    assert code == 3, result
    assert any(m["path"].endswith(SHOWN) for m in result["mismatches"]), result
