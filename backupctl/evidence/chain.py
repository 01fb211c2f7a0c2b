"""The hash chain of evidence records (SPEC §6): append, load and verify.

`hash` = SHA-256 over the canonical JSON (sorted keys, UTF-8, no whitespace) of the record
without `hash`; `prev_hash` is the previous record's hash (64 zeros for the first). Appends
happen inside the caller's serialized write transaction (state.db: SQLite `BEGIN IMMEDIATE`,
PostgreSQL advisory transaction lock) and `prev_hash` is unique in the table, so concurrent
writers can never fork the chain: a second record claiming the same predecessor is refused
by the database. The tool never updates or deletes a record.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from backupctl.state import queries

GENESIS = "0" * 64
FIELDS = ("id", "kind", "job", "host", "repository", "snapshot_id", "snapshot_time",
          "started_at", "finished_at", "operator", "result", "details", "backupctl_version",
          "restic_version", "prev_hash")
KINDS = ("backup", "copy", "probe", "verify", "drill", "clear")
RESULTS = ("pass", "fail")
_REQUIRED = ("kind", "job", "host", "repository", "started_at", "finished_at", "operator",
             "result", "backupctl_version", "restic_version")


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def head(conn: Connection) -> str:
    return queries.evidence_head(conn) or GENESIS


def append(conn: Connection, fields: dict[str, Any], *,
           run_id: int | None = None) -> dict[str, Any]:
    """Append one record inside the caller's (serialized) transaction; returns it with hash.

    Top-level values are stored as text, so they are normalised to `str` (or None) before
    hashing: the record read back from the database hashes to exactly the same value.
    """
    if fields.get("kind") not in KINDS:
        raise ValueError(f"unknown evidence kind {fields.get('kind')!r}")
    if fields.get("result") not in RESULTS:
        raise ValueError(f"evidence result must be pass or fail, not {fields.get('result')!r}")
    missing = [k for k in _REQUIRED if fields.get(k) in (None, "")]
    if missing:
        raise ValueError(f"evidence record lacks {', '.join(missing)}")
    record: dict[str, Any] = {
        k: (None if fields.get(k) is None else str(fields[k]))
        for k in FIELDS if k not in ("id", "prev_hash", "details")}
    record["id"] = str(uuid.uuid4())
    # Round-trip details through canonical JSON so what is hashed is what is stored.
    record["details"] = json.loads(canonical(fields.get("details") or {}))
    record["prev_hash"] = head(conn)
    record["hash"] = record_hash(record)
    row = dict(record)
    row["details"] = canonical(record["details"]).decode("utf-8")
    queries.insert_evidence(conn, {**row, "run_id": run_id})
    return record


def row_to_record(mapping: dict[str, Any]) -> dict[str, Any]:
    """A database row as the SPEC §6 record (without `seq` and `run_id`)."""
    record = {k: mapping[k] for k in (*FIELDS, "hash")}
    try:
        record["details"] = json.loads(mapping["details"])
    except (TypeError, ValueError):
        # Not JSON any more (cut or overwritten): kept as text, so its hash cannot match
        # and `evidence verify` names the record as edited.
        record["details"] = mapping["details"]
    return record


@dataclass(frozen=True)
class Entry:
    """A record with its position in the database."""

    seq: int
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.record.get("id"))

    @property
    def hash(self) -> str:
        return str(self.record.get("hash"))

    def name(self) -> str:
        return f"seq {self.seq} (id {self.id})"


def entries(conn: Connection) -> Iterator[Entry]:
    """Every record in chain order (by `seq`)."""
    for row in queries.evidence_rows(conn):
        yield Entry(seq=int(row["seq"]), record=row_to_record(row))


@dataclass(frozen=True)
class Problem:
    """The first place where the chain does not hold."""

    seq: int | None
    id: str | None
    what: str  # edited | deleted | inserted | reordered | anchor
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "id": self.id, "what": self.what, "message": self.message}


@dataclass(frozen=True)
class ChainCheck:
    count: int
    head: str
    head_seq: int | None
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "count": self.count, "head": self.head,
                "head_seq": self.head_seq,
                "problem": self.problem.to_dict() if self.problem else None}


def check(chain: Sequence[Entry], *, start: str = GENESIS) -> ChainCheck:
    """Walk `chain` (in seq order) and name the first edited/deleted/inserted/moved record.

    `start` is the `prev_hash` the first entry must carry (GENESIS for the whole chain, the
    stated predecessor for a slice).
    """
    head_entry = chain[-1] if chain else None
    summary = {"count": len(chain), "head": head_entry.hash if head_entry else start,
               "head_seq": head_entry.seq if head_entry else None}
    position = {e.hash: i for i, e in enumerate(chain)}
    claimed: dict[str, list[int]] = {}
    for i, e in enumerate(chain):
        claimed.setdefault(str(e.record.get("prev_hash")), []).append(i)
    expected = start
    for i, e in enumerate(chain):
        problem = _link_problem(chain, i, expected=expected, position=position,
                                claimed=claimed)
        if problem is None and record_hash(e.record) != e.hash:
            problem = Problem(e.seq, e.id, "edited", (
                f"record {e.name()} was edited or forged: its content no longer matches its hash "
                f"{e.hash[:16]}…"))
        if problem is not None:
            return ChainCheck(problem=problem, **summary)  # type: ignore[arg-type]
        expected = e.hash
    return ChainCheck(problem=None, **summary)  # type: ignore[arg-type]


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
