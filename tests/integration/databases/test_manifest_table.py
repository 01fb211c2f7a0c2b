"""The database manifest round-trips through the state database's `database_manifest`
table on SQLite and PostgreSQL (the reference a restore test reads back: row counts and the
schema fingerprint), found by the file snapshot of its backup run."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from backupctl.databases import DumpManifest
from backupctl.state import dumps
from backupctl.state.database_proof import SchemaObject
from backupctl.state.schema import metadata
from tests.conftest import Postgres

MANIFEST = DumpManifest(job="emr-db", database="emr", kind="postgresql", snapshot_id="1f753783",
                        path="/emr-db/emr.pgdump", sha256="ab" * 32, size=5 << 30,
                        tables={"public.pgbench_accounts": 6_500_000, 'public."患者"': 3},
                        server_version=150018, dump_version="15.18",
                        schema=(SchemaObject("primary key", "public.pgbench_accounts",
                                             "pgbench_accounts_pkey", "cd6797a1545702b6"),
                                SchemaObject("sequence", "", 'public."番号"',
                                             "0123456789abcdef")))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_manifest_row_round_trips(backend: str, tmp_path: Path, postgres: Postgres) -> None:
    url = (f"sqlite:///{tmp_path / 'state.db'}" if backend == "sqlite" else
           postgres.empty_url().replace("postgresql://", "postgresql+psycopg://", 1))
    engine = create_engine(url)
    metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            dumps.insert_database_manifests(conn, [MANIFEST.row(
                run_id=12, files_snapshot_id="deadbeef" * 8,
                created_at="2026-11-30T02:00:00.000000+00:00")])
        with engine.connect() as conn:
            found = dumps.database_manifests_of(conn, "emr-db", ["deadbeef" * 8])
            newest = dumps.newest_database_manifest(conn, "emr-db", "emr")
            other = dumps.database_manifests_of(conn, "emr-db", ["0badcafe" * 8])
        row = found["emr"]
        assert row == newest and row.run_id == 12 and row.files_snapshot_id == "deadbeef" * 8
        assert DumpManifest.from_row(row) == MANIFEST
        assert other == {}
    finally:
        if backend == "postgresql":
            metadata.drop_all(engine)
        engine.dispose()
