"""What an attacker who can write the state database (but cannot read the evidence key) does
to the chain, as plain row updates: strip signatures, downgrade records to version 1, edit
a result, then recompute every hash and link exactly as backupctl would. Shared by the
SQLite and PostgreSQL forgery tests, and a bundle's extraction checked with the
inspector's script."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from backupctl.evidence import chain

Change = Callable[[dict[str, Any]], None]
COLUMNS = ("result", "chain_version", "orchestrator", "signature", "key_fingerprint",
           "prev_hash", "hash")


def strip(record: dict[str, Any]) -> None:
    record["signature"] = None
    record.pop("key_fingerprint", None)


def downgrade(record: dict[str, Any]) -> None:
    for key in ("chain_version", "orchestrator", "signature", "key_fingerprint"):
        record.pop(key, None)


def mark_version_1(record: dict[str, Any]) -> None:
    """Keep the version-2 fields but say version 1 (what the review tried first)."""
    record["chain_version"] = 1
    record.pop("signature", None)


def rewritten(rows: list[dict[str, Any]], change: Change, *,
              victim: int | None = None) -> Iterator[dict[str, Any]]:
    """The updated columns of every row (chain order), `change` applied to each and the
    failed record at index `victim` turned into a pass, every hash and link recomputed."""
    prev = chain.GENESIS
    for i, row in enumerate(rows):
        record = chain.row_to_record(row)
        change(record)
        if i == victim:
            record["result"] = "pass"
        record["prev_hash"] = prev
        record["hash"] = chain.record_hash(record)
        prev = record["hash"]
        yield {"seq": row["seq"], **{c: record.get(c) for c in COLUMNS}}


def sqlite_update(update: dict[str, Any]) -> tuple[str, list[Any]]:
    sets = ", ".join(f"{c} = ?" for c in COLUMNS)
    return (f"UPDATE evidence SET {sets} WHERE seq = ?",
            [update[c] for c in COLUMNS] + [update["seq"]])


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def postgres_update(update: dict[str, Any]) -> str:
    sets = ", ".join(f"{c} = {sql_literal(update[c])}" for c in COLUMNS)
    return f"UPDATE evidence SET {sets} WHERE seq = {int(update['seq'])};"


def inspect_bundle(bundle: Path, password: str, into: Path) -> subprocess.CompletedProcess[str]:
    """Extract with 7-Zip and run the bundle's own verify-records.sh there."""
    subprocess.run(["7z", "x", "-y", f"-o{into}", str(bundle)], input=password + "\n",
                   text=True, capture_output=True, check=True)
    return subprocess.run(["sh", "verify-records.sh"], cwd=into, text=True,
                          capture_output=True, timeout=300, check=False)
