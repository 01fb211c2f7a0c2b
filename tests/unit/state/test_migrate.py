"""Additive upgrades against schemas of our own making (SQLite in memory)."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect, text

from backupctl.state import migrate
from backupctl.state.schema import meta


def _metadata(*extra: Column[object]) -> MetaData:
    md = MetaData()
    Table("t", md, Column("id", Integer, primary_key=True), Column("a", String(8)), *extra)
    meta.to_metadata(md)
    return md


def test_fingerprint_changes_with_a_column_only() -> None:
    assert migrate.fingerprint(_metadata()) == migrate.fingerprint(_metadata())
    assert migrate.fingerprint(_metadata()) != migrate.fingerprint(
        _metadata(Column("b", String(8))))


def test_nullable_and_defaulted_columns_are_added() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        assert migrate.upgrade(conn, _metadata()) == []  # a new database: nothing to add
        conn.execute(text("INSERT INTO t (id, a) VALUES (1, 'x')"))
    newer = _metadata(Column("b", String(8)),
                      Column("c", Integer, nullable=False, server_default=text("7")))
    with engine.begin() as conn:
        assert migrate.upgrade(conn, newer) == ["column t.b", "column t.c"]
        assert conn.execute(text("SELECT a, b, c FROM t")).one() == ("x", None, 7)
        assert migrate.upgrade(conn, newer) == []  # fingerprint stored: nothing again


def test_a_not_null_column_without_default_is_refused_by_name() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        migrate.upgrade(conn, _metadata())
    with engine.begin() as conn, pytest.raises(migrate.SchemaError, match=r"t\.b is missing"):
        migrate.upgrade(conn, _metadata(Column("b", String(8), nullable=False)))
    with engine.connect() as conn:
        assert "b" not in {c["name"] for c in inspect(conn).get_columns("t")}
