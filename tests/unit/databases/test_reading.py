"""databases/reading.py: a Draft becomes the DatabaseProof of the same fields."""

from __future__ import annotations

import dataclasses

from backupctl.databases.model import DumpManifest
from backupctl.databases.reading import Draft
from backupctl.state.database_proof import DatabaseCheck, DatabaseProof, TableCount

MANIFEST = DumpManifest(job="emr-db", database="emr", kind="postgresql", snapshot_id="1f753783",
                        path="/emr-db.emr.pgdump", sha256="ab" * 32, size=100,
                        tables={"public.a": 1, "public.b": 2})


def test_every_drafted_field_reaches_the_proof_and_the_manifest_fills_the_rest() -> None:
    draft = Draft(MANIFEST, "full", "c0ffee00", sha256_match=True, read_error="r",
                  tables_checked=2, rows_restored=2,
                  mismatches=[TableCount("public.b", 2, 1, "rows")],
                  checks=[DatabaseCheck("check 1", "SELECT true", True)], restore_ms=5,
                  timings_ms={"total": 9}, local_version="15.18", problems=["p"],
                  not_proven="n")
    proof = draft.done()

    drafted = {f.name for f in dataclasses.fields(Draft)} - {"manifest"}
    assert drafted < {f.name for f in dataclasses.fields(DatabaseProof)}
    assert all(getattr(proof, name) == getattr(draft, name) for name in drafted)
    assert (proof.name, proof.kind, proof.rows_expected) == ("emr", "postgresql", 3)
    draft.problems.append("later")  # the proof is a copy, not a view of the draft
    assert proof.problems == ["p"] and proof.result == "bad_data"
