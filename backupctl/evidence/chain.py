"""The hash chain of evidence records (SPEC §6).

`hash` = SHA-256 over the canonical JSON (sorted keys, UTF-8, no whitespace) of the record
without `hash`; `prev_hash` is the previous record's hash (64 zeros for the first). Appends
are serialized by the database transaction (see state.db) so concurrent writers never fork
the chain.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy import Connection, select

from backupctl.state.schema import evidence

GENESIS = "0" * 64
FIELDS = ("id", "kind", "job", "host", "repository", "snapshot_id", "snapshot_time",
          "started_at", "finished_at", "operator", "result", "details", "backupctl_version",
          "restic_version", "prev_hash")
KINDS = ("backup", "copy", "probe", "verify", "drill", "clear")


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def head(conn: Connection) -> str:
    row = conn.execute(select(evidence.c.hash).order_by(evidence.c.seq.desc()).limit(1)).first()
    return row[0] if row else GENESIS


def append(conn: Connection, fields: dict[str, Any], *,
           run_id: int | None = None) -> dict[str, Any]:
    """Append one record inside the caller's (serialized) transaction; returns it with hash."""
    if fields.get("kind") not in KINDS:
        raise ValueError(f"unknown evidence kind {fields.get('kind')!r}")
    record = {k: fields.get(k) for k in FIELDS if k not in ("id", "prev_hash")}
    record["id"] = str(uuid.uuid4())
    details: dict[str, Any] = fields.get("details") or {}
    record["details"] = details
    record["prev_hash"] = head(conn)
    record["hash"] = record_hash(record)
    row = dict(record)
    row["details"] = canonical(details).decode("utf-8")
    conn.execute(evidence.insert().values(**row, run_id=run_id))
    return record


def row_to_record(row: Any) -> dict[str, Any]:
    mapping = dict(row._mapping)
    record = {k: mapping[k] for k in (*FIELDS, "hash")}
    record["details"] = json.loads(mapping["details"])
    return record
