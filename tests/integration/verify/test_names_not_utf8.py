"""Names that are not valid UTF-8 (Shift_JIS/cp932 names from a Windows share) are hashed on
the source, restored and compared by their bytes, like any other name (SPEC §12): restic's
JSON shows them with U+FFFD, and backupctl finds them by their bytes on the source and in
the restored tree. Real restic, the real CLI, over the real sshd."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import Sshd, Workspace
from tests.repo_damage import flip_byte_in_largest_pack
from tests.restic_versions import restic_014, restic_018

from .conftest import backup, run_json

KARTE = "カルテ.txt".encode("cp932")  # b"\x83J\x83\x8b\x83e.txt"
FOLDER = "患者".encode("cp932")
# b"\x83\\\x95\\[1].txt": cp932's second bytes include `\` and `[`, restic's glob characters
FIVE_C = "ソ表[1].txt".encode("cp932")
SHOWN = "\\x83J\\x83\\x8b\\x83e.txt"  # how reports name it: escaped, readable, valid UTF-8
__all__ = ["restic_014", "restic_018"]  # the fixtures, for getfixturevalue


def _source(ws: Workspace, name: str) -> Path:
    """Only names that are not UTF-8 hold data, so any damaged data blob is theirs."""
    src = ws.root / "src" / name
    folder = os.fsencode(src) + b"/" + FOLDER
    os.makedirs(folder)
    for path, data in ((folder + b"/" + KARTE, os.urandom(3 * 1024 * 1024)),
                       (os.fsencode(src) + b"/" + KARTE, b"a patient's record\n" * 50),
                       (os.fsencode(src) + b"/" + FIVE_C, b"table\n")):
        with open(path, "wb") as handle:
            handle.write(data)
    return src


def _manifest_rows(ws: Workspace) -> list[tuple[str, str | None, str]]:
    with sqlite3.connect(ws.state_dir / "state.db") as conn:
        return list(conn.execute("SELECT path, raw_path, state FROM manifest ORDER BY path"))


@pytest.mark.parametrize("version", ["0.14", "0.18"])
def test_a_cp932_name_is_proven_by_its_bytes_in_quick_and_full_verify(
        ssh_workspace: Workspace, sshd: Sshd, version: str,
        request: pytest.FixtureRequest) -> None:
    """restic 0.14 and 0.18 (on the orchestrator and the host) list the name alike."""
    ws = ssh_workspace
    binary = request.getfixturevalue(f"restic_0{version[2:]}")
    ws.write_config(restic=str(binary))
    ws.job("names", source=_source(ws, "names"), sshd=sshd, verify={"sample": "all"},
           host={"restic": str(binary)})
    made = backup(ws, "names")
    assert made["manifest"]["unverifiable_count"] == 0
    assert made["manifest"]["references"] == 3, made["manifest"]
    rows = _manifest_rows(ws)
    assert all("\ufffd" in path and raw and state == "ok" for path, raw, state in rows), rows

    for mode in ("quick", "full"):
        code, result, stderr = run_json(ws, "verify", "names", "--mode", mode)
        assert code == 0, (mode, result, stderr)
        assert result["files_checked"] == 3 and result["unverifiable"] == [], result
        assert result["mismatches"] == [] and result["coverage"] == "1.000000"
    assert result["files_restored"] == 3 and result["restic_invocations"] == 2, \
        "counted by the backup's listing digest, the names that are not UTF-8 in it"

    flip_byte_in_largest_pack(ws.root / "repos" / "names")  # the big cp932 file's data
    code, result, stderr = run_json(ws, "verify", "names", "--mode", "full")

    assert code == 3, (result, stderr)
    named = [m["path"] for m in result["mismatches"]]
    inside = "/\\x8a\\xb3\\x8e\\xd2/" + SHOWN  # 患者/カルテ.txt, each byte escaped
    assert any(p.endswith(inside) for p in named), named
    assert inside in (result["error"] or ""), result["error"]
    json.dumps(result, ensure_ascii=False).encode("utf-8")  # nothing a JSON reader chokes on
