"""The evidence hash chain: canonical hashing, appends, and naming the first broken record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from backupctl.evidence import chain
from backupctl.state.db import Store
from tests import runs


def _store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'state.db'}")


def _run(store: Store, job: str = "emr-db", *, status: str = "success") -> None:
    runs.record(store, job=job, status=status, snapshot_id="abc123",
                evidence_details={"files_new": 3, "日本語": "カルテ"})


def _entries(store: Store) -> list[chain.Entry]:
    with store.read() as conn:
        return list(chain.entries(conn))


def _filled(tmp_path: Path, n: int = 6) -> Store:
    store = _store(tmp_path)
    for i in range(n):
        _run(store, f"job-{i}")
    return store


def _sql(store: Store, *statements: str) -> None:
    with store.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def test_hash_is_sha256_of_canonical_json_without_hash() -> None:
    record = {"b": 1, "a": "é", "hash": "ignored"}
    assert chain.canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
    import hashlib
    assert chain.record_hash(record) == hashlib.sha256(b'{"a":"\xc3\xa9","b":1}').hexdigest()


def test_records_link_from_genesis_and_verify(tmp_path: Path) -> None:
    store = _filled(tmp_path, 3)
    entries = _entries(store)
    assert [e.record["prev_hash"] for e in entries] == [
        chain.GENESIS, entries[0].hash, entries[1].hash]
    result = chain.check(entries)
    assert result.ok and result.count == 3 and result.head == entries[-1].hash
    assert set(entries[0].record) == {*chain.FIELDS, "hash"}
    assert entries[0].record["details"]["日本語"] == "カルテ"
    assert entries[0].record["started_at"].endswith("+00:00")


def test_unknown_kind_and_result_are_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    base = {"job": "j", "host": "h", "repository": "primary", "started_at": "t",
            "finished_at": "t", "operator": "scheduler", "backupctl_version": "1",
            "restic_version": "1"}
    with store.transaction() as conn:
        with pytest.raises(ValueError, match="kind"):
            chain.append(conn, {**base, "kind": "delete", "result": "pass"})
        with pytest.raises(ValueError, match="pass or fail"):
            chain.append(conn, {**base, "kind": "backup", "result": "ok"})


def test_edited_field_is_named(tmp_path: Path) -> None:
    store = _filled(tmp_path)
    _sql(store, "UPDATE evidence SET result = 'pass', job = 'other' WHERE seq = 3")
    problem = chain.check(_entries(store)).problem
    assert problem is not None
    assert (problem.seq, problem.what) == (3, "edited")
    assert problem.id == _entries(store)[2].id and problem.id in problem.message


def test_edited_details_are_named(tmp_path: Path) -> None:
    store = _filled(tmp_path)
    entries = _entries(store)
    details = json.dumps({**entries[1].record["details"], "files_new": 4})
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE evidence SET details = :d WHERE seq = 2"), {"d": details})
    problem = chain.check(_entries(store)).problem
    assert problem is not None and (problem.seq, problem.what) == (2, "edited")


def test_edit_with_recomputed_hash_is_named(tmp_path: Path) -> None:
    store = _filled(tmp_path)
    record = dict(_entries(store)[2].record, result="fail")
    new_hash = chain.record_hash(record)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE evidence SET result = 'fail', hash = :h WHERE seq = 3"),
                     {"h": new_hash})
    problem = chain.check(_entries(store)).problem
    assert problem is not None and (problem.seq, problem.what) == (3, "edited")


def test_deleted_record_is_named(tmp_path: Path) -> None:
    store = _filled(tmp_path)
    after = _entries(store)[3]
    _sql(store, "DELETE FROM evidence WHERE seq = 3")
    problem = chain.check(_entries(store)).problem
    assert problem is not None and problem.what == "deleted"
    assert (problem.seq, problem.id) == (4, after.id)
    assert "seq 3 missing" in problem.message


def test_swapped_records_are_named(tmp_path: Path) -> None:
    store = _filled(tmp_path)
    moved = _entries(store)[4]
    _sql(store, "UPDATE evidence SET seq = -1 WHERE seq = 2",
         "UPDATE evidence SET seq = 2 WHERE seq = 5",
         "UPDATE evidence SET seq = 5 WHERE seq = -1")
    problem = chain.check(_entries(store)).problem
    assert problem is not None and problem.what == "reordered"
    assert (problem.seq, problem.id) == (2, moved.id)


def test_inserted_record_is_named(tmp_path: Path) -> None:
    store = _filled(tmp_path, 3)
    entries = _entries(store)
    # A forged record, hashed correctly, that claims the first record as its predecessor.
    forged = dict(entries[1].record, id="forged", prev_hash=entries[0].hash)
    forged["hash"] = chain.record_hash(forged)
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE e2 AS SELECT * FROM evidence"))
        conn.execute(text("DROP TABLE evidence"))
        conn.execute(text("ALTER TABLE e2 RENAME TO evidence"))  # without the unique index
        conn.execute(text(
            "INSERT INTO evidence (seq, id, kind, job, host, repository, snapshot_id, "
            "snapshot_time, started_at, finished_at, operator, result, details, "
            "backupctl_version, restic_version, prev_hash, hash) VALUES (10, :id, :kind, :job, "
            ":host, :repository, :snapshot_id, :snapshot_time, :started_at, :finished_at, "
            ":operator, :result, :details, :backupctl_version, :restic_version, :prev_hash, "
            ":hash)"), {**forged, "details": chain.canonical(forged["details"]).decode()})
    problem = chain.check(_entries(store)).problem
    assert problem is not None and (problem.seq, problem.id, problem.what) == (
        10, "forged", "inserted")


def test_database_refuses_a_fork(tmp_path: Path) -> None:
    store = _filled(tmp_path, 2)
    first = _entries(store)[0]
    with pytest.raises(Exception, match="UNIQUE"), store.engine.begin() as conn:
        conn.execute(text("UPDATE evidence SET prev_hash = :p WHERE seq = 2"),
                     {"p": first.record["prev_hash"]})


def test_anchors_catch_a_truncated_chain(tmp_path: Path) -> None:
    store = _filled(tmp_path, 4)
    last = _entries(store)[-1]
    anchors = chain.parse_anchors(
        "# anchors\n" + chain.Anchor(at="2026-01-01T00:00:00+00:00", seq=last.seq,
                                     hash=last.hash).line())
    assert chain.check_anchors(_entries(store), anchors) is None
    _sql(store, f"DELETE FROM evidence WHERE seq = {last.seq}")
    assert chain.check(_entries(store)).ok  # the chain alone cannot see a cut-off tail
    problem = chain.check_anchors(_entries(store), anchors)
    assert problem is not None and problem.what == "deleted" and problem.seq == last.seq


def test_bad_anchor_line_is_reported() -> None:
    with pytest.raises(ValueError, match="line 1"):
        chain.parse_anchors("nonsense\n")
