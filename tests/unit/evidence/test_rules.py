"""The rules a record must follow at its place in the chain (SPEC §6, turn 3), on chains
whose every hash an attacker recomputed: only the rules (and the key) can tell."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backupctl.evidence import chain
from backupctl.signing import Keyring, Signer
from backupctl.status import ExitStatus

OWN = Signer(Ed25519PrivateKey.generate())
OTHER = Signer(Ed25519PrivateKey.generate())
STRANGER = Signer(Ed25519PrivateKey.generate())


@dataclass(frozen=True)
class Spec:
    """How one record of a test chain is written."""

    version: int = 2
    signer: Signer | None = None
    named: bool = True  # names its key (records since several orchestrators)


V1, UNSIGNED = Spec(version=1), Spec()


def signed(by: Signer = OWN, *, named: bool = True) -> Spec:
    return Spec(signer=by, named=named)


def _body(version: int) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(chain.FIELDS_V1)
    record.update(id=str(uuid.uuid4()), kind="backup", job="emr", host="local",
                  repository="primary", started_at="2026-01-01T00:00:00+00:00",
                  finished_at="2026-01-01T00:01:00+00:00", operator="scheduler",
                  result="fail", details={"files_new": 1}, backupctl_version="t",
                  restic_version="0.14.0")
    if version == 2:
        record.update(orchestrator="orch-a", chain_version=2)
    return record


def seal(records: list[dict[str, Any]]) -> list[chain.Entry]:
    """Link and hash (and sign where a record says so) as backupctl would; what an
    attacker without the key can do too, except for the signatures."""
    prev = chain.GENESIS
    out = []
    for seq, record in enumerate(records, 1):
        signer = record.pop("_signer", None)
        record["prev_hash"] = prev
        record["hash"] = chain.record_hash(record)
        if record.get("chain_version") == 2:
            record["signature"] = signer.sign(record["hash"]) if signer else None
        out.append(chain.Entry(seq, record))
        prev = record["hash"]
    return out


def build(*specs: Spec) -> list[dict[str, Any]]:
    records = []
    for spec in specs:
        record = _body(spec.version)
        if spec.signer is not None:
            if spec.named:
                record["key_fingerprint"] = spec.signer.public.fingerprint
            record["_signer"] = spec.signer
        records.append(record)
    return records


def make(*specs: Spec) -> list[chain.Entry]:
    return seal(build(*specs))


def reseal(entries: list[chain.Entry], change: Any) -> list[chain.Entry]:
    """The attacker's rewrite: change the records, then recompute every hash and link (the
    signatures they cannot make; they keep the old ones or drop them)."""
    records = [dict(e.record) for e in entries]
    for i, record in enumerate(records):
        change(i + 1, record)
    prev = chain.GENESIS
    out = []
    for seq, record in enumerate(records, 1):
        record["prev_hash"] = prev
        record["hash"] = chain.record_hash(record)
        out.append(chain.Entry(seq, record))
        prev = record["hash"]
    return out


KEYS = Keyring(OWN.public)


def test_an_old_chain_verifies_v1_then_unsigned_v2_then_signed_unnamed_then_named() -> None:
    entries = make(V1, V1, UNSIGNED, UNSIGNED, signed(named=False), signed(), signed())
    result = chain.check(entries, keys=KEYS)
    assert result.ok, result.problem
    assert (result.signed, result.unsigned, result.first_signed_seq) == (3, 2, 5)
    assert result.signers == {OWN.public.fingerprint: 3}


def _strip(seq: int, record: dict[str, Any]) -> None:
    record["signature"] = None
    record.pop("key_fingerprint", None)
    if seq == 4:
        record["result"] = "pass"


def test_stripping_every_signature_and_recomputing_leaves_only_the_pin_to_tell() -> None:
    entries = reseal(make(V1, UNSIGNED, signed(), signed(), signed()), _strip)
    # Unsigned version-2 records after a version-1 start is how an old chain looks…
    assert chain.check(entries, keys=KEYS).ok
    # …but the head pin knows the first signed seq: every record from it on must be signed.
    problem = chain.check(entries, keys=KEYS, first_signed=3).problem
    assert problem is not None and (problem.seq, problem.what) == (3, "stripped")
    assert "head pin" in problem.message and problem.status is ExitStatus.BAD_DATA


def test_a_record_stripped_after_a_signed_one_is_named() -> None:
    entries = reseal(make(signed(), signed(), signed()),
                     lambda seq, r: _strip(seq, r) if seq == 2 else None)
    problem = chain.check(entries, keys=KEYS).problem
    assert problem is not None and (problem.seq, problem.what) == (2, "stripped")
    assert "seq 1" in problem.message and entries[1].id in problem.message


def test_an_unsigned_record_that_names_its_key_was_stripped() -> None:
    entries = reseal(make(signed()), lambda seq, r: r.update(signature=None))
    problem = chain.check(entries, keys=KEYS).problem
    assert problem is not None and problem.what == "stripped"


def _downgrade(seq: int, record: dict[str, Any]) -> None:
    for key in ("chain_version", "orchestrator", "signature", "key_fingerprint"):
        record.pop(key, None)


def test_version_1_after_version_2_is_a_downgrade() -> None:
    entries = reseal(make(V1, UNSIGNED, signed(), signed()),
                     lambda seq, r: _downgrade(seq, r) if seq == 4 else None)
    problem = chain.check(entries, keys=KEYS).problem
    assert problem is not None and (problem.seq, problem.what) == (4, "downgraded")
    assert "version 1 after version-2 record seq 2" in problem.message


def test_downgrading_the_whole_chain_is_caught_by_the_pin() -> None:
    entries = reseal(make(V1, signed(), signed()), _downgrade)
    assert chain.check(entries, keys=KEYS).ok  # a chain of version-1 records only
    problem = chain.check(entries, keys=KEYS, first_signed=2).problem
    assert problem is not None and (problem.seq, problem.what) == (2, "downgraded")


@pytest.mark.parametrize("change", [
    {"chain_version": 1}, {"chain_version": None, "orchestrator": "orch-a"},
    {"chain_version": None, "key_fingerprint": OWN.public.fingerprint}, {"chain_version": 3}])
def test_a_record_marked_version_1_with_version_2_traits_is_a_downgrade(
        change: dict[str, Any]) -> None:
    def edit(seq: int, record: dict[str, Any]) -> None:
        if seq == 1:
            record["signature"] = None
            record.update(change)
            if record.get("chain_version") is None:
                record.pop("chain_version")
    entries = reseal(make(UNSIGNED), edit)
    problem = chain.check(entries, keys=KEYS).problem
    assert problem is not None and (problem.seq, problem.what) == (1, "downgraded")


def test_a_row_marked_version_1_keeps_its_version_2_columns_visible() -> None:
    row = {**{k: None for k in (*chain.FIELDS, "hash", "signature", "key_fingerprint")},
           "details": "{}", "chain_version": 1, "orchestrator": "orch-a"}
    record = chain.row_to_record(row)
    assert record["chain_version"] == 1 and record["orchestrator"] == "orch-a"
    assert "key_fingerprint" not in record and "signature" not in record


def test_records_of_a_trusted_orchestrator_verify_and_a_stranger_is_a_foreign_key() -> None:
    entries = make(signed(OWN), signed(OTHER), signed(OTHER, named=False), signed(OWN))
    alone = chain.check(entries, keys=KEYS).problem
    assert alone is not None and (alone.seq, alone.what) == (2, "foreign-key")
    assert OTHER.public.fingerprint in alone.message
    trusting = Keyring(OWN.public, (OTHER.public,))
    result = chain.check(entries, keys=trusting)
    assert result.ok and result.signers == {OWN.public.fingerprint: 2,
                                            OTHER.public.fingerprint: 2}
    strange = chain.check(make(signed(OWN), signed(STRANGER)), keys=trusting).problem
    assert strange is not None and (strange.seq, strange.what) == (2, "foreign-key")


def test_a_record_naming_a_trusted_key_but_signed_by_another_does_not_verify() -> None:
    records = build(signed(OWN))
    records[0]["key_fingerprint"] = OTHER.public.fingerprint  # signed by OWN below
    problem = chain.check(seal(records), keys=Keyring(OWN.public, (OTHER.public,))).problem
    assert problem is not None and problem.what == "signature"


def test_signed_records_without_the_public_key_cannot_be_proven_but_forgeries_still_count(
        ) -> None:
    entries = make(signed(), signed(named=False))
    result = chain.check(entries, keys=Keyring(None))
    assert result.problem is not None and result.problem.what == "unverifiable"
    assert result.problem.status is ExitStatus.FAILED and not result.ok
    assert chain.check(entries).problem is not None  # no keyring at all: the same
    stripped = reseal(make(signed(), signed(), signed()),
                      lambda seq, r: _strip(seq, r) if seq == 3 else None)
    later = chain.check(stripped, keys=Keyring(None)).problem
    assert later is not None and (later.seq, later.what) == (3, "stripped")


def test_a_signed_record_before_the_pinned_first_signed_seq_is_allowed_by_the_walk() -> None:
    # The walk only demands signatures from the first signed seq on; a signed record
    # before it is the pin's to report (pin.compare).
    assert chain.check(make(signed(), signed()), keys=KEYS, first_signed=2).ok
