"""The hash chain of evidence records (SPEC §6): append, load and verify.

Version 2 (every new record): `hash` = SHA-256 over the RFC 8785 (JCS) canonical JSON of the
record without `hash` and `signature`; records hold no floating-point numbers, so that form
equals `jq -cS` output and an inspector can recompute every hash with jq and sha256sum
(docs/audit.md). `signature` is the base64 Ed25519 signature of the hex `hash` with the
evidence key (evidence/keys.py), which the database does not hold; `orchestrator` names the
machine that wrote it. Version-1 records (older) keep verifying: their hash is over Python's
sorted, compact JSON of the record without `hash`.

`prev_hash` is the previous record's hash (64 zeros for the first). Appends happen inside
the caller's serialized write transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL advisory
transaction lock) and `prev_hash` is unique in the table, so concurrent writers can never
fork the chain. The tool never updates or deletes a record.

Records signed since several orchestrators share a chain name their key (`key_fingerprint`,
part of the hashed content). What a record may be at its place (version 1 only at the
start, nothing unsigned after the first signed record, only accepted keys) is rules.py.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from sqlalchemy import Connection

from backupctl.evidence import rules
from backupctl.evidence.model import UNPROVEN
from backupctl.evidence.model import Entry as Entry
from backupctl.evidence.model import Problem as Problem
from backupctl.signing import Keyring, Signer
from backupctl.state import queries

GENESIS = "0" * 64
CHAIN_VERSION = rules.CHAIN_VERSION
KEY_FIELD = "key_fingerprint"  # in records signed since keys are named (absent otherwise)
FIELDS_V1 = ("id", "kind", "job", "host", "repository", "snapshot_id", "snapshot_time",
             "started_at", "finished_at", "operator", "result", "details",
             "backupctl_version", "restic_version", "prev_hash")
FIELDS = (*FIELDS_V1, "orchestrator", "chain_version")  # v2, besides hash and signature
KINDS = ("backup", "copy", "probe", "verify", "drill", "clear", "notice", "recovery")
RESULTS = ("pass", "fail")
_REQUIRED = ("kind", "job", "host", "repository", "started_at", "finished_at", "operator",
             "result", "backupctl_version", "restic_version", "orchestrator")


def canonical(record: dict[str, Any]) -> bytes:
    """Version 1's canonical form (Python's sorted, compact JSON)."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str).encode("utf-8")


def canonical_v2(record: dict[str, Any]) -> bytes:
    """RFC 8785 of the record without `hash` and `signature` (what is hashed)."""
    return rfc8785.dumps({k: v for k, v in record.items() if k not in ("hash", "signature")})


def record_hash(record: dict[str, Any]) -> str:
    if record.get("chain_version") == CHAIN_VERSION:
        return hashlib.sha256(canonical_v2(record)).hexdigest()
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def line(record: dict[str, Any]) -> bytes:
    """The record as one line of a bundle's records.jsonl (v2: its RFC 8785 form)."""
    if record.get("chain_version") == CHAIN_VERSION:
        return rfc8785.dumps(record) + b"\n"
    return canonical(record) + b"\n"


def head(conn: Connection) -> str:
    return queries.evidence_head(conn) or GENESIS


def _plain(value: Any) -> Any:
    """JSON data a record may hold: no floats (an inspector's jq would print them
    differently), no DEL character (JCS and jq escape it differently)."""
    if isinstance(value, float):
        raise ValueError(f"evidence records hold no floating-point numbers: {value!r}")
    if isinstance(value, str):
        return value.replace("\x7f", "\ufffd")
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def append(conn: Connection, fields: dict[str, Any], *, run_id: int | None = None,
           signer: Signer | None = None) -> Entry:
    """Append one version-2 record inside the caller's (serialized) transaction; returns it
    with its place, hash (and signature when there is an evidence key)."""
    if fields.get("kind") not in KINDS:
        raise ValueError(f"unknown evidence kind {fields.get('kind')!r}")
    if fields.get("result") not in RESULTS:
        raise ValueError(f"evidence result must be pass or fail, not {fields.get('result')!r}")
    missing = [k for k in _REQUIRED if fields.get(k) in (None, "")]
    if missing:
        raise ValueError(f"evidence record lacks {', '.join(missing)}")
    record: dict[str, Any] = {
        k: (None if fields.get(k) is None else _plain(str(fields[k])))
        for k in FIELDS if k not in ("id", "prev_hash", "details", "chain_version")}
    record["id"] = str(uuid.uuid4())
    record["details"] = _plain(fields.get("details") or {})
    record["prev_hash"] = head(conn)
    record["chain_version"] = CHAIN_VERSION
    if signer is not None:
        record[KEY_FIELD] = signer.public.fingerprint
    record["hash"] = record_hash(record)
    record["signature"] = signer.sign(record["hash"]) if signer is not None else None
    row = dict(record)
    row["details"] = rfc8785.dumps(record["details"]).decode("utf-8")
    return Entry(queries.insert_evidence(conn, {**row, "run_id": run_id}), record)


def row_to_record(mapping: dict[str, Any]) -> dict[str, Any]:
    """A database row as the SPEC §6 record (without `seq` and `run_id`)."""
    v2 = mapping.get("chain_version") == CHAIN_VERSION
    record = {k: mapping[k] for k in (*(FIELDS if v2 else FIELDS_V1), "hash")}
    if v2:
        record["signature"] = mapping.get("signature")
    # Present only when set: older version-2 records were hashed without a key_fingerprint,
    # and a version-1 row showing any version-2 column is named as downgraded (rules.py).
    extra = (KEY_FIELD,) if v2 else ("chain_version", *rules.V2_ONLY)
    record.update({k: mapping[k] for k in extra if mapping.get(k) is not None})
    try:
        record["details"] = json.loads(mapping["details"])
    except (TypeError, ValueError):
        # Not JSON any more (cut or overwritten): kept as text, so its hash cannot match
        # and `evidence verify` names the record as edited.
        record["details"] = mapping["details"]
    return record


def entries(conn: Connection, *, after: int = 0) -> Iterator[Entry]:
    """Every record (after seq `after`) in chain order."""
    for row in queries.evidence_rows(conn, after=after):
        yield Entry(seq=int(row["seq"]), record=row_to_record(row))


@dataclass(frozen=True)
class ChainCheck:
    count: int
    head: str
    head_seq: int | None
    problem: Problem | None  # the first forgery, else the first record that cannot be proven
    signed: int = 0  # records whose signature verified with an accepted key
    unsigned: int = 0  # version-2 records written before an evidence key existed
    first_signed_seq: int | None = None
    signers: dict[str, int] = field(default_factory=dict)  # key fingerprint → records

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "count": self.count, "head": self.head,
                "head_seq": self.head_seq, "signed": self.signed, "unsigned": self.unsigned,
                "first_signed_seq": self.first_signed_seq, "signers": self.signers,
                "problem": self.problem.to_dict() if self.problem else None}


def check(chain: Sequence[Entry], *, start: str = GENESIS, keys: Keyring | None = None,
          first_signed: int | None = None) -> ChainCheck:
    """Walk `chain` (in seq order) and name the first edited/deleted/inserted/moved record,
    or the first that breaks a rule of rules.py (downgraded, stripped, a foreign key, a
    signature that does not verify with the accepted `keys`).

    `start` is the `prev_hash` the first entry must carry (GENESIS for the whole chain, the
    stated predecessor for a slice); `first_signed` the head pin's first signed seq (every
    record from it on must be signed, also in a slice that starts after it). A record that
    cannot be proven (no public key) does not stop the walk: a forgery later still counts.
    """
    head_entry = chain[-1] if chain else None
    position = {e.hash: i for i, e in enumerate(chain)}
    claimed: dict[str, list[int]] = {}
    for i, e in enumerate(chain):
        claimed.setdefault(str(e.record.get("prev_hash")), []).append(i)
    expected = start
    seen = rules.Seen(first_signed=first_signed)
    forged = unproven = None
    for i, e in enumerate(chain):
        problem = _link_problem(chain, i, expected=expected, position=position,
                                claimed=claimed)
        if problem is None and record_hash(e.record) != e.hash:
            problem = Problem(e.seq, e.id, "edited", (
                f"record {e.name()} was edited or forged: its content no longer matches its hash "
                f"{e.hash[:16]}…"))
        if problem is None:
            problem = rules.visit(e, seen, keys)
        if problem is not None and problem.what != UNPROVEN:
            forged = problem
            break
        unproven = unproven or problem
        expected = e.hash
    return ChainCheck(count=len(chain), head=head_entry.hash if head_entry else start,
                      head_seq=head_entry.seq if head_entry else None,
                      problem=forged or unproven, signed=seen.signed, unsigned=seen.unsigned,
                      first_signed_seq=seen.signed_first.seq if seen.signed_first else None,
                      signers=seen.signers)


def _link_problem(chain: Sequence[Entry], i: int, *, expected: str, position: dict[str, int],
                  claimed: dict[str, list[int]]) -> Problem | None:
    e = chain[i]
    prev = str(e.record.get("prev_hash"))
    if prev == expected:
        return None
    before = chain[i - 1] if i else None
    where = f"after {before.name()}" if before else "at the start of the chain"
    j = position.get(prev)
    if j is not None and len(claimed.get(prev, [])) > 1 and j < i:
        # Two records claim the same predecessor: one of them was inserted.
        if before is not None and str(before.record.get("prev_hash")) == prev:
            return Problem(before.seq, before.id, "inserted", (
                f"record {before.name()} was inserted: {e.name()} links past it to "
                f"{chain[j].name()}"))
        return Problem(e.seq, e.id, "inserted", (
            f"record {e.name()} was inserted: it claims the same predecessor "
            f"{chain[j].name()} as another record"))
    if j is not None:
        return Problem(e.seq, e.id, "reordered", (
            f"record {e.name()} is out of order: it must follow {chain[j].name()}, not come "
            f"{where}"))
    if before is not None and e.seq == before.seq + 1:
        return Problem(before.seq, before.id, "edited", (
            f"record {before.name()} was edited with its hash recomputed (or the record "
            f"after it deleted and the rest renumbered): {e.name()} links to "
            f"{prev[:16]}…, which is not in the chain"))
    first_missing = before.seq + 1 if before else 1
    missing = "" if e.seq <= first_missing else (
        f" (seq {first_missing} missing)" if e.seq == first_missing + 1
        else f" (seq {first_missing}–{e.seq - 1} missing)")
    return Problem(e.seq, e.id, "deleted", (
        f"a record was deleted before {e.name()}{missing}: its predecessor "
        f"{prev[:16]}… is not in the chain"))


# -- anchors ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Anchor:
    """A head written down outside the database: `TIME<TAB>seq=N<TAB>HASH` per line."""

    at: str
    seq: int
    hash: str

    def line(self) -> str:
        return f"{self.at}\tseq={self.seq}\t{self.hash}\n"


def parse_anchors(text: str) -> list[Anchor]:
    anchors = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[1].startswith("seq=") or len(parts[2]) != 64:
            raise ValueError(f"line {number}: expected TIME seq=N HASH, got {line!r}")
        anchors.append(Anchor(at=parts[0], seq=int(parts[1][4:]), hash=parts[2].lower()))
    return anchors


def check_anchors(chain: Sequence[Entry], anchors: Sequence[Anchor]) -> Problem | None:
    """Every anchored head must still be in the chain at its seq (catches truncation)."""
    by_seq = {e.seq: e for e in chain}
    for anchor in anchors:
        entry = by_seq.get(anchor.seq)
        if entry is None:
            return Problem(anchor.seq, None, "deleted", (
                f"record seq {anchor.seq} anchored at {anchor.at} (hash {anchor.hash[:16]}…) "
                "is missing: records were deleted or the chain was truncated"))
        if entry.hash != anchor.hash:
            return Problem(entry.seq, entry.id, "edited", (
                f"record {entry.name()} differs from the head anchored at {anchor.at}: "
                f"hash {entry.hash[:16]}… instead of {anchor.hash[:16]}…"))
    return None
