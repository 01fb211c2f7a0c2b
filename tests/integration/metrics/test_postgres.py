"""Metrics from a real PostgreSQL state database say exactly what SQLite says."""

from __future__ import annotations

from pathlib import Path

from backupctl.metrics import exposition
from tests.conftest import Postgres
from tests.unit.metrics.conftest import populate


def test_postgres_and_sqlite_expose_the_same_metrics(postgres: Postgres,
                                                    tmp_path: Path) -> None:
    on_pg = populate(postgres.url)
    on_sqlite = populate(f"sqlite:///{tmp_path / 'state.db'}")

    pg_text, pg_ok = exposition(on_pg.source())
    sqlite_text, sqlite_ok = exposition(on_sqlite.source())

    assert pg_ok and sqlite_ok
    assert b'backupctl_verify_last_status{backup_job="failed",repository="primary"} 0.0' \
        in pg_text
    assert b'backupctl_restore_duration_seconds{backup_job="ok",repository="primary"} 300.0' \
        in pg_text
    assert pg_text == sqlite_text


def test_unreachable_postgres_is_state_up_zero(tmp_path: Path) -> None:
    fleet = populate(f"sqlite:///{tmp_path / 'state.db'}")
    text, ok = exposition(fleet.source(url="postgresql://postgres@127.0.0.1:1/postgres"))
    assert not ok
    assert b"backupctl_state_up 0.0" in text
