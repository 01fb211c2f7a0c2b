"""The proofs table on PostgreSQL (the several-orchestrator state, SPEC §9 and §12): the same
diff, due order (unproven first, although PostgreSQL's ascending index puts NULL last),
guarded proofs and freshness read as on SQLite."""

from __future__ import annotations

from backupctl.state import proofs
from backupctl.state.db import Store
from tests.conftest import Postgres

T0 = "2026-12-01T00:00:00.000000+00:00"
T1 = "2026-12-02T00:00:00.000000+00:00"
M = "2026-11-01T00:00:00.000000000+00:00"


def _row(path: str, *, proven: str | None = None, sha: str | None = "a" * 64,
         ) -> dict[str, object]:
    return {"path": path, "size": 1, "mtime": M, "sha256": sha, "seen_at": T0,
            "proven_at": proven}


def test_proofs_on_postgresql(postgres: Postgres) -> None:
    store = Store(postgres.empty_url())
    with store.transaction() as conn:
        proofs.apply(conn, "emr", snapshot_id="s1", remove=[], add=[
            _row("/proven", proven=T0), _row("/waiting"), _row("/nohash", sha=None),
            _row("/名前 'quoted'.txt")], files=4, changed=4, untracked=0, at=T0)
    due = [d.path for d in store.query(proofs.due, "emr", limit=None)]
    assert sorted(due[:2]) == ["/waiting", "/名前 'quoted'.txt"] and due[2:] == ["/proven"]
    with store.transaction() as conn:
        proofs.mark_proven(conn, "emr", [("/waiting", 1, "a" * 64), ("/nohash", 1, "b" * 64)],
                           at=T1)
        proofs.apply(conn, "emr", snapshot_id="s2", remove=["/proven"],
                     add=[_row("/proven")], files=4, changed=1, untracked=0, at=T1)
    fresh = store.query(proofs.freshness, ["emr"])["emr"]
    assert (fresh.files, fresh.unproven, fresh.oldest_proof) == (4, 3, T1)
    assert fresh.snapshot_id == "s2"
