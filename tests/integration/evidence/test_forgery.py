"""The forgeries of the turn-3 security review against real state (issue 24 B, SPEC §6
"rules a database writer cannot bend"), through the real CLI: signatures stripped or
records downgraded to version 1 with a failure turned into a pass and every hash
recomputed, the newest records deleted with their runs, the public key missing, the head
pin altered or missing. Each must be exit 3 (1: cannot prove) in `evidence verify --db`, in
`evidence verify BUNDLE` and in the inspector's verify-records.sh."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from backupctl.evidence import chain
from tests import yaml_helpers
from tests.conftest import BACKUPCTL, Workspace, need

from . import forge

BUNDLE_PASSWORD = "inspector-password-24b"


def period() -> tuple[str, ...]:
    """From 2020 to today, read when the test runs."""
    return ("--from", "2020-01-01", "--to", date.today().isoformat())


def _ok(ws: Workspace, *args: str) -> str:
    done = ws.run(*args)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def signed_ws(tmp_path_factory: pytest.TempPathFactory, restic_template: Path) -> Workspace:
    """Signed records of real runs: two backups, a failed backup, a restore test."""
    root = tmp_path_factory.mktemp("forgery")
    ws = Workspace(root=root / "ws", repo_template=restic_template,
                   known_hosts=root / "ws" / "known_hosts")
    ws.root.mkdir()
    ws.known_hosts.touch()
    ws.write_config()
    ws.jobs_dir.mkdir()
    _ok(ws, "evidence", "init-key")
    ws.job("emr")
    (ws.root / "src" / "emr" / "karte.txt").write_text("患者データ\n")
    _ok(ws, "backup", "emr")
    ws.job("broken", repo=ws.root / "repos" / "does-not-exist")
    assert ws.run("backup", "broken").returncode == 1
    _ok(ws, "backup", "emr")
    _ok(ws, "verify", "emr")
    return ws


@dataclass
class Copy:
    """The signed workspace's state, key, public key and head pin, under a config of its
    own: each test forges its own copy."""

    config: Path
    db: Path
    key: Path

    @property
    def pub(self) -> Path:
        return self.key.with_name("evidence.key.pub")

    @property
    def pin(self) -> Path:
        return self.key.with_name("evidence.key.head")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*BACKUPCTL, "-c", str(self.config), *args], text=True,
                              capture_output=True, timeout=300, check=False)

    def verify(self) -> subprocess.CompletedProcess[str]:
        return self.run("evidence", "verify", "--db", "--json")

    def rows(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM evidence ORDER BY seq")]

    def forge(self, change: forge.Change) -> dict[str, Any]:
        """`change` every record, turn the failed backup into a pass, recompute; returns
        the failed record as it was."""
        rows = self.rows()
        victim = next(i for i, r in enumerate(rows) if r["result"] == "fail")
        with sqlite3.connect(self.db) as conn:
            for update in forge.rewritten(rows, change, victim=victim):
                conn.execute(*forge.sqlite_update(update))
            conn.execute("UPDATE runs SET status = 'success', exit_code = 0")
        return rows[victim]

    def truncate(self, newest: int) -> list[dict[str, Any]]:
        gone = self.rows()[-newest:]
        with sqlite3.connect(self.db) as conn:
            for row in gone:
                conn.execute("DELETE FROM evidence WHERE seq = ?", (row["seq"],))
                conn.execute("DELETE FROM runs WHERE id = ?", (row["run_id"],))
        return gone

    def export(self, into: Path) -> Path:
        password = into / "bundle-password"
        password.write_text(BUNDLE_PASSWORD + "\n")
        out = into / "evidence.zip"
        self.run("evidence", "export", *period(), "-o", str(out), "--password-file",
                 str(password))
        assert out.exists()
        return out

    def verify_bundle(self, bundle: Path) -> subprocess.CompletedProcess[str]:
        return self.run("evidence", "verify", str(bundle), "--password-file",
                        str(bundle.parent / "bundle-password"))


@pytest.fixture
def copy(signed_ws: Workspace, tmp_path: Path) -> Copy:
    shutil.copytree(signed_ws.state_dir, tmp_path / "state")
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    for name in ("evidence.key", "evidence.key.pub", "evidence.key.head"):
        shutil.copy2(signed_ws.root / name, keys / name)
    config = tmp_path / "backupctl.yaml"
    config.write_text(yaml_helpers.dump({
        "jobs_dir": str(signed_ws.jobs_dir), "state_dir": str(tmp_path / "state"),
        "scratch_dir": str(tmp_path / "scratch"), "known_hosts": str(signed_ws.known_hosts),
        "evidence_key": str(keys / "evidence.key")}))
    return Copy(config, tmp_path / "state" / "state.db", keys / "evidence.key")


def _problems(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = json.loads(done.stdout)["problems"]
    return problems


def _bundle_and_script_say_forged(copy: Copy, tmp_path: Path, *words: str) -> None:
    need("7z")
    bundle = copy.export(tmp_path)
    done = copy.verify_bundle(bundle)
    assert done.returncode == 3, done.stdout + done.stderr
    script = forge.inspect_bundle(bundle, BUNDLE_PASSWORD, tmp_path / "extracted")
    assert script.returncode == 3, script.stdout + script.stderr
    for word in words:
        assert word in script.stdout, script.stdout


def test_the_untouched_copy_verifies(copy: Copy, tmp_path: Path) -> None:
    done = copy.verify()
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["signed"] == result["count"] == len(copy.rows())
    assert result["head_pin"]["seq"] == copy.rows()[-1]["seq"]
    assert result["head_pin"]["first_signed_seq"] == 1
    bundle = copy.export(tmp_path)
    assert copy.verify_bundle(bundle).returncode == 0
    script = forge.inspect_bundle(bundle, BUNDLE_PASSWORD, tmp_path / "extracted")
    assert script.returncode == 0, script.stdout + script.stderr
    assert "head pin: seq" in script.stdout


def test_signatures_stripped_a_failure_made_a_pass_and_hashes_recomputed_is_exit_3(
        copy: Copy, tmp_path: Path) -> None:
    copy.forge(forge.strip)
    done = copy.verify()
    assert done.returncode == 3, done.stdout + done.stderr
    first = _problems(done)[0]
    assert (first["seq"], first["what"]) == (1, "stripped")
    assert "head pin" in first["message"] and first["id"] == copy.rows()[0]["id"]
    text = copy.run("evidence", "verify", "--db")
    assert text.returncode == 3 and "EVIDENCE CHAIN BROKEN (stripped)" in text.stderr
    report = copy.run("report", *period(), "--format", "json")
    assert report.returncode == 3 and "stripped" in json.loads(report.stdout)["chain"]["problem"]
    _bundle_and_script_say_forged(copy, tmp_path, "stripped")


def test_a_history_downgraded_to_version_1_is_exit_3(copy: Copy, tmp_path: Path) -> None:
    copy.forge(forge.downgrade)
    assert all(r["chain_version"] is None and r["signature"] is None for r in copy.rows())
    done = copy.verify()
    assert done.returncode == 3, done.stdout + done.stderr
    whats = {(p["seq"], p["what"]) for p in _problems(done)}
    assert (1, "downgraded") in whats, whats
    assert any(w == "deleted" for _, w in whats), "the pinned head is not in the chain either"
    _bundle_and_script_say_forged(copy, tmp_path, "downgraded")


def test_records_marked_chain_version_1_are_exit_3(copy: Copy, tmp_path: Path) -> None:
    copy.forge(forge.mark_version_1)
    done = copy.verify()
    assert done.returncode == 3
    first = _problems(done)[0]
    assert (first["seq"], first["what"]) == (1, "downgraded")
    assert "chain_version 1" in first["message"]
    _bundle_and_script_say_forged(copy, tmp_path, "downgraded")


def test_the_newest_records_deleted_with_their_runs_is_exit_3_without_any_anchor(
        copy: Copy, signed_ws: Workspace, tmp_path: Path) -> None:
    gone = copy.truncate(2)
    done = copy.verify()
    assert done.returncode == 3, done.stdout + done.stderr
    (problem,) = _problems(done)
    assert problem["what"] == "deleted" and problem["seq"] == gone[-1]["seq"]
    assert f"seq {gone[0]['seq']}–{gone[-1]['seq']}" in problem["message"]
    _bundle_and_script_say_forged(copy, tmp_path, "did not verify when the bundle was exported")
    # A later run reuses the seqs (SQLite): the pin stays and still tells.
    again = copy.run("backup", "emr")
    assert again.returncode == 0 and "no longer holds the record" in again.stderr
    assert copy.verify().returncode == 3


def test_signed_records_without_the_public_key_cannot_be_proven(copy: Copy) -> None:
    copy.pub.unlink()
    done = copy.verify()
    assert done.returncode == 1, done.stdout + done.stderr
    assert {p["what"] for p in _problems(done)} == {"unverifiable"}
    text = copy.run("evidence", "verify", "--db")
    assert text.returncode == 1 and "EVIDENCE CANNOT BE PROVEN" in text.stderr
    assert "OK" not in text.stdout
    report = copy.run("report", *period(), "--format", "json")
    assert report.returncode == 1, report.stderr
    chain_part = json.loads(report.stdout)["chain"]
    assert not chain_part["verified"] and chain_part["exit_code"] == 1


def test_stripping_is_still_exit_3_when_the_public_key_is_missing(copy: Copy) -> None:
    """Records that cannot be proven do not hide a forgery after them."""
    second = copy.rows()[1]
    copy.forge(lambda r: forge.strip(r) if r["id"] == second["id"] else None)
    copy.pub.unlink()
    done = copy.verify()
    assert done.returncode == 3, done.stdout + done.stderr
    first = _problems(done)[0]
    assert (first["seq"], first["id"], first["what"]) == (second["seq"], second["id"],
                                                          "stripped")


def test_an_altered_head_pin_is_exit_3(copy: Copy) -> None:
    data = json.loads(copy.pin.read_text())
    data["seq"] -= 1
    data["hash"] = copy.rows()[-2]["hash"]
    copy.pin.write_text(json.dumps(data))
    done = copy.verify()
    assert done.returncode == 3
    assert _problems(done)[0]["what"] == "pin"


def test_without_a_pin_after_an_upgrade_verify_cannot_prove_until_head_pin(
        copy: Copy) -> None:
    copy.pin.unlink()
    done = copy.verify()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "evidence head --pin" in _problems(done)[0]["message"]
    pinned = copy.run("evidence", "head", "--pin", "--json")
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert json.loads(pinned.stdout)["pin"] == str(copy.pin)
    assert copy.verify().returncode == 0
    copy.truncate(1)
    assert copy.verify().returncode == 3


def test_a_chain_from_older_versions_keeps_verifying(workspace: Workspace,
                                                      tmp_path: Path) -> None:
    """Version 1 at the start, unsigned version 2 before the key, then signed records: in
    `evidence verify --db`, the bundle and the inspector's script."""
    ws = workspace
    ws.job("old")
    (ws.root / "src" / "old" / "a.txt").write_text("x")
    _ok(ws, "backup", "old")
    db = ws.state_dir / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM evidence")
        conn.execute("DELETE FROM runs")
        prev = chain.GENESIS
        for i in range(2):  # what backupctl 0.1 wrote: Python's JSON, a float, unsigned
            record: dict[str, Any] = dict.fromkeys(chain.FIELDS_V1)
            record.update(id=str(uuid.uuid4()), kind="backup", job="old", host="local",
                          repository="primary", started_at="2025-06-01T00:00:00+00:00",
                          finished_at="2025-06-01T00:01:00+00:00", operator="scheduler",
                          result="pass", details={"duration": 1.5 + i, "note": "古い"},
                          prev_hash=prev, backupctl_version="0.1.0", restic_version="0.14.0")
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
    _ok(ws, "backup", "old")  # unsigned version 2: no key yet
    _ok(ws, "evidence", "init-key")
    _ok(ws, "backup", "old")
    done = ws.run("evidence", "verify", "--db", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert (result["count"], result["unsigned"], result["signed"]) == (4, 1, 1)
    assert result["head_pin"]["first_signed_seq"] == 4
    password = tmp_path / "pw"
    password.write_text(BUNDLE_PASSWORD + "\n")
    _ok(ws, "evidence", "export", "--from", "2020-01-01", "--to", date.today().isoformat(),
        "-o", str(tmp_path / "old.zip"), "--password-file", str(password))
    _ok(ws, "evidence", "verify", str(tmp_path / "old.zip"), "--password-file", str(password))
    script = forge.inspect_bundle(tmp_path / "old.zip", BUNDLE_PASSWORD, tmp_path / "x")
    assert script.returncode == 0, script.stdout + script.stderr
    assert "OK: 4 records" in script.stdout and "1 signatures" in script.stdout
    # The script also checks version-1 hashes (floats and all): edit one and re-sum.
    lines = (tmp_path / "x" / "records.jsonl").read_text().splitlines()
    lines[0] = lines[0].replace('"pass"', '"fail"')
    (tmp_path / "x" / "records.jsonl").write_text("\n".join(lines) + "\n")
    _resum(tmp_path / "x")
    edited = subprocess.run(["sh", "verify-records.sh"], cwd=tmp_path / "x", text=True,
                            capture_output=True, timeout=300, check=False)
    assert edited.returncode == 3 and "record 1" in edited.stdout and "version 1" in edited.stdout


def _resum(directory: Path) -> None:
    names = sorted(p.name for p in directory.iterdir() if p.name != "SHA256SUMS")
    sums = subprocess.run(["sha256sum", *names], cwd=directory, text=True,
                          capture_output=True, check=True).stdout
    (directory / "SHA256SUMS").write_text(sums)
