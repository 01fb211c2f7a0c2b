"""`evidence verify --db` over records made by real backups, copies and restore tests;
tampering with plain SQL is named by seq and id (issue #7 acceptance)."""

from __future__ import annotations

import getpass
import json
import sqlite3
from typing import Any

from tests.conftest import Workspace

from .conftest import Clone


def _records(db: object) -> list[dict[str, Any]]:
    with sqlite3.connect(str(db)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM evidence ORDER BY seq")]


def test_real_runs_leave_one_valid_chain(evidence_ws: Workspace) -> None:
    result = evidence_ws.run("evidence", "verify", "--db", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    records = _records(evidence_ws.state_dir / "state.db")
    kinds = [(r["kind"], r["job"], r["result"]) for r in records]
    assert kinds.count(("backup", "emr-db", "pass")) == 2
    assert kinds.count(("backup", "pacs", "pass")) == 2
    assert ("copy", "emr-db", "pass") in kinds
    assert ("verify", "emr-db", "pass") in kinds and ("verify", "pacs", "pass") in kinds
    assert ("backup", "broken", "fail") in kinds  # a failed run is evidence too
    assert payload["ok"] and payload["count"] == len(records)
    assert payload["head"] == records[-1]["hash"]
    for record in records:
        assert record["started_at"].endswith("+00:00") and record["finished_at"].endswith("+00:00")
        assert record["operator"] == getpass.getuser()  # run by hand, not by a timer
        assert record["restic_version"] and record["backupctl_version"]


def test_text_output_states_count_and_head(clone: Clone) -> None:
    result = clone.run("evidence", "verify", "--db")
    records = _records(clone.db)
    assert result.returncode == 0, result.stderr
    assert f"{len(records)} records" in result.stdout and records[-1]["hash"] in result.stdout


def test_editing_one_field_is_named(clone: Clone) -> None:
    victim = _records(clone.db)[2]
    clone.sql(f"UPDATE evidence SET result = 'pass', operator = 'x' WHERE seq = {victim['seq']}")
    result = clone.run("evidence", "verify", "--db")
    assert result.returncode == 3
    assert f"seq {victim['seq']} (id {victim['id']})" in result.stderr
    assert "edited" in result.stderr


def test_editing_details_of_a_restore_test_is_named(clone: Clone) -> None:
    victim = next(r for r in _records(clone.db) if r["kind"] == "verify")
    details = json.loads(str(victim["details"]))
    details["files_checked"] = 999
    with sqlite3.connect(clone.db) as conn:
        conn.execute("UPDATE evidence SET details = ? WHERE seq = ?",
                     (json.dumps(details), victim["seq"]))
    result = clone.run("evidence", "verify", "--db", "--json")
    assert result.returncode == 3
    problem = json.loads(result.stdout)["problem"]
    assert (problem["seq"], problem["id"], problem["what"]) == (victim["seq"], victim["id"],
                                                                "edited")


def test_deleting_a_record_is_named(clone: Clone) -> None:
    records = _records(clone.db)
    clone.sql(f"DELETE FROM evidence WHERE seq = {records[1]['seq']}")
    result = clone.run("evidence", "verify", "--db")
    assert result.returncode == 3
    assert "deleted" in result.stderr
    assert f"seq {records[2]['seq']} (id {records[2]['id']})" in result.stderr
    assert f"seq {records[1]['seq']} missing" in result.stderr


def test_swapping_two_records_is_named(clone: Clone) -> None:
    records = _records(clone.db)
    a, b = records[1]["seq"], records[3]["seq"]
    clone.sql(f"UPDATE evidence SET seq = -1 WHERE seq = {a}",
              f"UPDATE evidence SET seq = {a} WHERE seq = {b}",
              f"UPDATE evidence SET seq = {b} WHERE seq = -1")
    result = clone.run("evidence", "verify", "--db")
    assert result.returncode == 3
    assert "out of order" in result.stderr
    assert f"seq {a} (id {records[3]['id']})" in result.stderr


def test_anchor_catches_the_last_record_deleted(clone: Clone) -> None:
    anchors = clone.db.parent / "anchors.txt"
    head = clone.run("evidence", "head", "--anchor", str(anchors))
    assert head.returncode == 0, head.stderr
    last = _records(clone.db)[-1]
    assert f"seq={last['seq']}" in anchors.read_text() and last["hash"] in anchors.read_text()
    clone.sql(f"DELETE FROM evidence WHERE seq = {last['seq']}")
    missing = clone.run("evidence", "verify", "--db")
    assert missing.returncode == 3, "its run is still there: every finished run has a record"
    assert f"run {last['run_id']}" in missing.stderr and "no evidence record" in missing.stderr
    clone.sql(f"DELETE FROM runs WHERE id = {last['run_id']}")
    assert clone.run("evidence", "verify", "--db").returncode == 0  # a clean cut looks fine…
    result = clone.run("evidence", "verify", "--db", "--anchor", str(anchors))
    assert result.returncode == 3  # …until compared with the head written down elsewhere
    assert f"seq {last['seq']}" in result.stderr
    refused = clone.run("evidence", "head", "--anchor", str(anchors))
    assert refused.returncode == 3 and anchors.read_text().count("seq=") == 1


def test_verify_needs_a_target(clone: Clone) -> None:
    assert clone.run("evidence", "verify").returncode == 2
