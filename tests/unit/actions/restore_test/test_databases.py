"""Which dumps a restore test proves: found through the backup run's file snapshot (its
original for a copy); missing ones are not proven, a dump gone from a copy is bad data."""

from __future__ import annotations

import json
from pathlib import Path

from backupctl.actions import repo as repos
from backupctl.actions.restore_test.databases import manifests, prove
from backupctl.databases import DumpManifest
from backupctl.execute.fake import FakeRunner
from backupctl.state import dumps
from backupctl.state.db import Store
from backupctl.verify.listing import SnapshotRef
from tests.unit.actions.conftest import make_context

EMR = {"name": "emr", "kind": "postgresql", "dsn": "host=/run/postgresql dbname=emr"}
FILES = "1a2b3c4d" + "0" * 56
DUMP = DumpManifest(job="emr", database="emr", kind="postgresql", snapshot_id="9f8e7d6c",
                    path="/emr/emr.pgdump", sha256="ab" * 32, size=1000,
                    tables={"public.patients": 3})


def _record(store: Store, *, files_snapshot: str) -> None:
    with store.transaction() as conn:
        dumps.insert_database_manifests(conn, [DUMP.row(
            run_id=1, files_snapshot_id=files_snapshot, created_at=store.now())])


def test_a_snapshot_without_a_recorded_dump_is_not_proven(tmp_path: Path) -> None:
    ctx, job = make_context(tmp_path, databases=[EMR])
    snap = SnapshotRef(id=FILES, short_id=FILES[:8], time="2026-11-30T02:00:00Z",
                       original=None)

    (found,), _ = prove(ctx, job, repos.primary(job), snap, FILES, mode="full")

    assert found.result == "not_proven" and found.not_proven is not None
    assert "has no dump of this database recorded" in found.not_proven


def test_the_dump_of_the_backup_run_is_found_by_its_file_snapshot(tmp_path: Path) -> None:
    ctx, job = make_context(tmp_path, databases=[EMR])
    _record(ctx.store, files_snapshot=FILES[:8])  # restic's summary gives the short id
    copied = SnapshotRef(id="c" * 64, short_id="c" * 8, time="2026-11-30T02:00:00Z",
                         original=FILES)

    assert manifests(ctx, job, copied, FILES) == {"emr": DUMP}
    other = SnapshotRef(id="d" * 64, short_id="d" * 8, time="2026-11-30T02:00:00Z",
                        original=None)
    assert manifests(ctx, job, other, other.id) == {}


def test_a_dump_that_never_reached_the_copy_is_bad_data(tmp_path: Path) -> None:
    local = FakeRunner(host="local")
    listing = [{"id": "c" * 64, "short_id": "c" * 8, "time": "2026-11-30T02:00:00Z",
                "original": FILES, "tags": ["backupctl"]}]
    local.on("snapshots", stdout=json.dumps(listing).encode())
    usb = {"name": "usb", "kind": "offline", "url": str(tmp_path / "usb"),
           "password_file": str(tmp_path / "pw"), "max_age": "7d"}
    ctx, job = make_context(tmp_path, local=local, databases=[EMR], copies=[usb])
    _record(ctx.store, files_snapshot=FILES[:8])
    snap = SnapshotRef(id="c" * 64, short_id="c" * 8, time="2026-11-30T02:00:00Z",
                       original=FILES)

    (found,), _ = prove(ctx, job, repos.named(job, "usb"), snap, FILES, mode="quick")

    assert found.result == "bad_data"
    assert found.findings() == ["database emr: the dump cannot be read from the repository: "
                                "its snapshot 9f8e7d6c (the dump made with snapshot cccccccc) "
                                "is not in usb"]
