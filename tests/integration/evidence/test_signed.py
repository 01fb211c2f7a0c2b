"""Evidence version 2 against an attacker who can write the state database (issue #13):
signatures with a key outside it, anchors outside it (a file, an immutable copy), every run
with its record, and an inspector's check with jq, sha256sum and openssl alone."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backupctl.evidence import chain
from tests.conftest import RestServer, Workspace, restic


@dataclass
class Signed:
    ws: Workspace
    fingerprint: str
    anchors: Path

    @property
    def db(self) -> Path:
        return self.ws.state_dir / "state.db"

    def rows(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM evidence ORDER BY seq")]

    def verify(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.ws.run("evidence", "verify", "--db", *args)


def _ok(ws: Workspace, *args: str) -> str:
    done = ws.run(*args)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture
def signed(workspace: Workspace, rest_server: Callable[..., RestServer]) -> Signed:
    ws = workspace
    anchors = ws.root / "anchors" / "evidence.anchors"
    anchors.parent.mkdir()
    anchors.touch()
    ws.write_config(evidence_anchor_file=str(anchors))
    ws.jobs_dir.mkdir()
    made = json.loads(ws.run("evidence", "init-key", "--json").stdout)
    worm = rest_server(ws.new_repo("emr-worm"))
    ws.job("emr", copies=[{"name": "worm", "kind": "immutable", "url": worm.url,
                           "password_file": str(ws.password_file()), "max_age": "2d"}])
    (ws.root / "src" / "emr" / "karte.txt").write_text("患者データ\n")
    _ok(ws, "backup", "emr")
    ws.job("broken", repo=ws.root / "repos" / "does-not-exist")
    assert ws.run("backup", "broken").returncode == 1
    _ok(ws, "copy", "emr")
    _ok(ws, "verify", "emr")
    return Signed(ws, made["fingerprint"], anchors)


def test_every_record_is_signed_and_anchored(signed: Signed) -> None:
    done = signed.verify("--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    rows = signed.rows()
    assert result["signed"] == len(rows) == result["count"] and result["unsigned"] == 0
    assert result["key_fingerprint"] == signed.fingerprint
    assert all(r["chain_version"] == 2 and r["signature"] and r["orchestrator"] for r in rows)
    lines = signed.anchors.read_text().splitlines()
    assert len(lines) == len(rows), "the head is written down after every run"
    assert lines[-1].endswith(rows[-1]["hash"])


def _rehash_from(rows: list[dict[str, Any]], start: int, conn: sqlite3.Connection) -> None:
    """What an attacker with the database (but not the key) can do: recompute every hash and
    link from `start` on, exactly as backupctl would."""
    prev = rows[start - 1]["hash"] if start else chain.GENESIS
    for row in rows[start:]:
        record = chain.row_to_record(row)
        record["prev_hash"] = prev
        record["hash"] = chain.record_hash(record)
        conn.execute("UPDATE evidence SET prev_hash = ?, hash = ?, result = ? WHERE seq = ?",
                     (prev, record["hash"], record["result"], row["seq"]))
        prev = record["hash"]


def test_a_failure_rewritten_as_a_pass_with_every_hash_recomputed_is_caught(
        signed: Signed) -> None:
    rows = signed.rows()
    victim = next(i for i, r in enumerate(rows) if r["result"] == "fail")
    rows[victim]["result"] = "pass"
    with sqlite3.connect(signed.db) as conn:
        _rehash_from(rows, victim, conn)
        conn.execute("UPDATE runs SET status = 'success', exit_code = 0")
    done = signed.verify("--json")
    assert done.returncode == 3
    problem = json.loads(done.stdout)["problem"]
    assert (problem["seq"], problem["what"]) == (rows[victim]["seq"], "signature")
    assert "does not verify with key " + signed.fingerprint in problem["message"]


def test_stripping_the_signatures_of_a_rewritten_tail_is_caught(signed: Signed) -> None:
    rows = signed.rows()
    with sqlite3.connect(signed.db) as conn:
        conn.execute("UPDATE evidence SET signature = NULL WHERE seq = ?", (rows[-1]["seq"],))
    done = signed.verify()
    assert done.returncode == 3
    assert f"seq {rows[-1]['seq']}" in done.stderr and "not signed" in done.stderr


def test_deleting_the_newest_records_and_their_runs_is_caught_by_the_anchor_file(
        signed: Signed) -> None:
    rows = signed.rows()
    with sqlite3.connect(signed.db) as conn:
        for row in rows[-2:]:
            conn.execute("DELETE FROM evidence WHERE seq = ?", (row["seq"],))
            conn.execute("DELETE FROM runs WHERE id = ?", (row["run_id"],))
    done = signed.verify()
    assert done.returncode == 3
    assert "deleted" in done.stderr and f"seq {rows[-2]['seq']}" in done.stderr


def test_the_immutable_copy_holds_the_records_and_catches_a_truncation(
        signed: Signed) -> None:
    ws = signed.ws
    repo = ws.root / "repos" / "emr-worm"
    held = json.loads(restic(repo, "snapshots", "--json", "--tag",
                             "backupctl-evidence").stdout)
    assert held and held[0]["hostname"] == "backupctl-evidence"
    (path,) = held[-1]["paths"]
    first, last = map(int, re.findall(r"seq-(\d+)-(\d+)-", path)[0])
    stored = restic(repo, "dump", held[-1]["id"], path).stdout.decode().splitlines()
    assert [json.loads(line)["seq"] for line in stored] == list(range(first, last + 1))
    assert json.loads(stored[-1])["record"]["hash"] == signed.rows()[last - 1]["hash"]
    assert signed.verify("--against", "worm").returncode == 0
    signed.anchors.write_text("")  # the anchor file tells nothing any more
    with sqlite3.connect(signed.db) as conn:
        for row in signed.rows()[last - 1:]:
            conn.execute("DELETE FROM evidence WHERE seq = ?", (row["seq"],))
            conn.execute("DELETE FROM runs WHERE id = ?", (row["run_id"],))
    done = signed.verify()
    assert done.returncode == 3, "the head pin beside the key tells, without any option…"
    assert "head pin" in done.stderr and "deleted" in done.stderr
    done = signed.verify("--against", "emr:worm")
    assert done.returncode == 3, "…and the immutable copy still holds what was cut"
    assert "immutable copy emr:worm" in done.stderr and "deleted" in done.stderr


def test_an_inspector_verifies_a_bundle_with_jq_sha256sum_and_openssl(
        signed: Signed, tmp_path: Path) -> None:
    ws = signed.ws
    password = ws.password_file("bundle", "inspector-password-1")
    _ok(ws, "evidence", "export", "--from", "2026-01-01", "--to", "2026-12-31", "-o",
        str(tmp_path / "evidence.zip"), "--password-file", str(password))
    out = tmp_path / "bundle"
    subprocess.run(["7z", "x", "-y", f"-o{out}", str(tmp_path / "evidence.zip")],
                   input="inspector-password-1\n", text=True, capture_output=True, check=True)

    done = subprocess.run(["sh", "verify-records.sh"], cwd=out, text=True,
                          capture_output=True, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    count = len((out / "records.jsonl").read_text().splitlines())
    assert f"OK: {count} records" in done.stdout and f"{count} signatures" in done.stdout
    assert f"key fingerprint: {signed.fingerprint}" in done.stdout
    lines = (out / "records.jsonl").read_text().splitlines()
    record = json.loads(lines[1])
    record["result"] = "pass" if record["result"] == "fail" else "fail"
    lines[1] = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    (out / "records.jsonl").write_text("\n".join(lines) + "\n")
    sums = subprocess.run(["sha256sum", *[p.name for p in sorted(out.iterdir())
                                          if p.name != "SHA256SUMS"]],
                          cwd=out, text=True, capture_output=True, check=True).stdout
    (out / "SHA256SUMS").write_text(sums)
    forged = subprocess.run(["sh", "verify-records.sh"], cwd=out, text=True,
                            capture_output=True, timeout=120)
    assert forged.returncode == 3 and "record 2" in forged.stdout


def test_version_1_records_keep_verifying_before_version_2(workspace: Workspace) -> None:
    ws = workspace
    ws.job("old")
    (ws.root / "src" / "old" / "a.txt").write_text("x")
    _ok(ws, "backup", "old")
    rows = Signed(ws, "", ws.root).rows()
    with sqlite3.connect(ws.state_dir / "state.db") as conn:
        conn.execute("DELETE FROM evidence")
        prev = chain.GENESIS
        for i in range(3):  # what backupctl 0.1 wrote: Python's JSON, floats, no signature
            record: dict[str, Any] = dict.fromkeys(chain.FIELDS_V1)
            record.update(id=str(uuid.uuid4()), kind="backup", job="old", host="local",
                          repository="primary", started_at=rows[0]["started_at"],
                          finished_at=rows[0]["finished_at"], operator="scheduler",
                          result="pass", details={"duration": 1.5 + i}, prev_hash=prev,
                          backupctl_version="0.1.0", restic_version="0.14.0")
            record["hash"] = chain.record_hash(record)
            conn.execute("INSERT INTO evidence (id, kind, job, host, repository, started_at, "
                         "finished_at, operator, result, details, backupctl_version, "
                         "restic_version, prev_hash, hash) VALUES "
                         "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         (record["id"], "backup", "old", "local", "primary",
                          record["started_at"], record["finished_at"], "scheduler", "pass",
                          chain.canonical(record["details"]).decode(), "0.1.0", "0.14.0",
                          prev, record["hash"]))
            prev = record["hash"]
        conn.execute("DELETE FROM runs")
    _ok(ws, "backup", "old")
    done = ws.run("evidence", "verify", "--db", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["count"] == 4 and result["unsigned"] == 1  # no key made in this workspace


def test_an_evidence_key_others_can_read_is_refused(workspace: Workspace) -> None:
    workspace.job("k")
    _ok(workspace, "evidence", "init-key")
    workspace.evidence_key.chmod(0o644)
    done = workspace.run("validate")
    assert done.returncode == 2
    assert str(workspace.evidence_key) in done.stderr and "mode 0644" in done.stderr
