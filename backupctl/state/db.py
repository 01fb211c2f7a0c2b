"""The state database (SQLite by default, PostgreSQL via `database_url`): connections only.

Every write is one serialized transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL advisory
transaction lock), so a run's state row and its evidence record land together and
concurrent writers never fork the evidence chain. What is read and written lives in
`state/queries.py`; this module only opens, upgrades and hands out connections.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from backupctl.clock import Clock, iso, system_clock
from backupctl.errors import BackupctlError
from backupctl.state import pgconn
from backupctl.state.migrate import upgrade
from backupctl.state.schema import metadata

_PG_CHAIN_LOCK = 0x6261636B  # "back": one advisory lock id for every write transaction
P = ParamSpec("P")
T = TypeVar("T")


class StateError(BackupctlError):
    """The state database cannot be used."""


def safe_url(url: str) -> str:
    """A database URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, poolclass=NullPool,
                               connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            dbapi_conn.execute("PRAGMA busy_timeout = 60000")
            dbapi_conn.execute("PRAGMA foreign_keys = ON")

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if pgconn.is_postgresql(url):
        # Keepalives on both ends: with a silently cut network a write fails in bounded time
        # instead of hanging, and the server frees the chain lock a dead client held.
        return create_engine(pgconn.sqlalchemy_url(url), poolclass=NullPool,
                             connect_args=pgconn.connect_args(url))
    return create_engine(url, poolclass=NullPool)


class Store:
    """Connections to the state database, opened (and upgraded) once per process."""

    def __init__(self, url: str, *, clock: Clock = system_clock,
                 orchestrator: str | None = None) -> None:
        self.url = url
        self.clock = clock
        self.orchestrator = orchestrator or socket.gethostname()
        try:
            self.engine = _engine(url)
            with self.engine.begin() as conn:
                _serialize(conn)
                upgrade(conn, metadata)
            _private(url)
        except SQLAlchemyError as exc:
            raise StateError(f"cannot open the state database {safe_url(url)}: "
                             f"{exc.__class__.__name__}: {exc.args[0] if exc.args else ''}")\
                from None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One serialized write transaction."""
        try:
            with self.engine.begin() as conn:
                _serialize(conn)
                yield conn
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    def query(self, fn: Callable[Concatenate[Connection, P], T], /,
              *args: P.args, **kwargs: P.kwargs) -> T:
        """One read query (a `state.queries` function) on its own connection."""
        with self.read() as conn:
            return fn(conn, *args, **kwargs)

    def now(self) -> str:
        return iso(self.clock())

    def _error(self, exc: SQLAlchemyError) -> StateError:
        return StateError(f"state database {safe_url(self.url)}: {exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0]}")


def _private(url: str) -> None:
    """An SQLite state database holds the source manifests (patient file names): 0600, also
    when an older version created it readable by others."""
    if not url.startswith("sqlite:///"):
        return
    path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    with contextlib.suppress(OSError):
        info = path.stat()
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(0o600)


def _serialize(conn: Connection) -> None:
    """Make the transaction the only writer: SQLite's BEGIN IMMEDIATE already is (see
    `_engine`); PostgreSQL takes one advisory lock shared by every backupctl writer."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_CHAIN_LOCK})")
