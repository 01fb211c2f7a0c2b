"""The head pin beside the evidence key: written after every record, compared with the
database, never moved backwards nor over a truncation."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from backupctl.evidence import chain, pin
from backupctl.signing import Signer, init_key, load_signer
from backupctl.state.db import Store

BASE = {"kind": "backup", "job": "emr", "host": "local", "repository": "primary",
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00",
        "operator": "scheduler", "orchestrator": "orch-a", "result": "pass",
        "backupctl_version": "t", "restic_version": "0.14.0"}


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    init_key(tmp_path / "evidence.key")
    found = load_signer(tmp_path / "evidence.key")
    assert found is not None
    return found


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'state.db'}", orchestrator="orch-a")


def append(store: Store, signer: Signer | None, n: int = 1) -> list[chain.Entry]:
    out = []
    for _ in range(n):
        with store.transaction() as conn:
            out.append(chain.append(conn, dict(BASE), signer=signer))
        pin.advance(store, signer, out[-1])
    return out


def entries(store: Store) -> list[chain.Entry]:
    with store.read() as conn:
        return list(chain.entries(conn))


def pinned(signer: Signer) -> pin.Pin:
    assert signer.path is not None
    found = pin.read(pin.path_for(signer.path))
    assert found is not None
    return found


def test_the_pin_follows_every_record_signed_private_and_beside_the_key(
        store: Store, signer: Signer) -> None:
    append(store, None, 2)  # before the key existed: no pin
    assert signer.path is not None and not pin.path_for(signer.path).exists()
    made = append(store, signer, 3)
    found = pinned(signer)
    assert (found.seq, found.hash, found.first_signed_seq) == (5, made[-1].hash, 3)
    assert found.key_fingerprint == signer.public.fingerprint and found.verifies(signer.public)
    path = pin.path_for(signer.path)
    assert path.name == "evidence.key.head" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert made[0].record["key_fingerprint"] == signer.public.fingerprint
    assert pin.compare(entries(store), found) == []


def test_deleting_the_newest_records_is_named_by_the_pin(store: Store, signer: Signer) -> None:
    append(store, signer, 4)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM evidence WHERE seq > 2"))
    (problem,) = pin.compare(entries(store), pinned(signer))
    assert (problem.seq, problem.what) == (4, "deleted")
    assert "seq 3–4" in problem.message and "ends at seq 2" in problem.message


def test_a_truncation_stays_visible_after_later_runs(store: Store, signer: Signer,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    append(store, signer, 4)
    before = pinned(signer)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM evidence WHERE seq > 2"))
    with caplog.at_level(logging.ERROR):
        append(store, signer, 1)  # SQLite gives the new record seq 3 again
    assert pinned(signer) == before, "the pin is never replaced by one that contradicts it"
    assert "no longer holds the record" in caplog.text
    (problem,) = pin.compare(entries(store), before)
    assert problem.what == "deleted" and "seq 4" in problem.message
    append(store, signer, 1)  # seq 4, another record than the pinned one
    (problem,) = pin.compare(entries(store), before)
    assert (problem.seq, problem.what) == (4, "deleted") and "in their place" in problem.message


def test_the_pin_never_moves_backwards(store: Store, signer: Signer) -> None:
    made = append(store, signer, 3)
    pin.advance(store, signer, made[0])  # a slower run of this orchestrator, pinning late
    assert pinned(signer).seq == 3


def test_the_first_signed_seq_is_kept_from_the_pin_not_read_again(
        store: Store, signer: Signer) -> None:
    append(store, None, 1)
    append(store, signer, 2)
    with store.engine.begin() as conn:  # the attacker strips the first signature…
        conn.execute(text("UPDATE evidence SET signature = NULL WHERE seq = 2"))
    append(store, signer, 1)
    assert pinned(signer).first_signed_seq == 2  # …the pin still says where signing began


def test_an_altered_pin_does_not_verify_and_is_kept(store: Store, signer: Signer) -> None:
    append(store, signer, 2)
    assert signer.path is not None
    path = pin.path_for(signer.path)
    data = json.loads(path.read_bytes())
    data["seq"] = 1
    path.write_text(json.dumps(data))
    altered = pin.read(path)
    assert altered is not None
    problem = pin.trust_problem(altered, signer.public, path=path)
    assert problem is not None and problem.what == "pin" and problem.proven
    append(store, signer, 1)
    assert pin.read(path) == altered, "a pin that does not verify is left for verify to report"
    unproven = pin.trust_problem(altered, None, path=path)
    assert unproven is not None and not unproven.proven


def test_a_signed_record_before_the_pinned_first_signed_seq_is_named(
        store: Store, signer: Signer) -> None:
    append(store, signer, 3)
    found = pinned(signer)
    later = pin.Pin(**{**found.__dict__, "first_signed_seq": 2})
    (problem,) = pin.compare(entries(store), later)
    assert (problem.seq, problem.what) == (1, "pin")


@pytest.mark.parametrize("data", [b"", b"{}", b"[1]", b'{"format": "backupctl-evidence-head/1"}',
                                  b"not json"])
def test_what_is_not_a_pin_is_refused(data: bytes) -> None:
    with pytest.raises(pin.PinError):
        pin.parse(data)


def test_a_pin_with_an_extra_field_is_refused(store: Store, signer: Signer) -> None:
    append(store, signer, 1)
    assert signer.path is not None
    data = json.loads(pin.path_for(signer.path).read_bytes())
    with pytest.raises(pin.PinError, match="unexpected"):
        pin.parse(json.dumps({**data, "note": "x"}).encode())


def test_a_pin_that_cannot_be_written_never_fails_the_run(
        store: Store, signer: Signer, caplog: pytest.LogCaptureFixture) -> None:
    assert signer.path is not None
    pin.path_for(signer.path).mkdir()  # in the way of the rename
    with caplog.at_level(logging.ERROR):
        append(store, signer, 1)
    assert "not written" in caplog.text
