"""Read what the metrics need from the state database: read-only, one snapshot, a few queries.

The exporter reads state on every scrape, so this never writes (no table creation, no
crash recovery, no `BEGIN IMMEDIATE`): SQLite is opened with `mode=ro` (it works under
systemd's `ReadOnlyPaths=`) and PostgreSQL in a read-only REPEATABLE READ transaction, so
every query of one scrape sees the same state.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, create_engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from backupctl.errors import BackupctlError
from backupctl.state.schema import flags, generations, runs

KINDS = ("backup", "copy", "probe", "verify")
RunKey = tuple[str, str, str]  # (kind, job, repository)


class StateUnavailable(BackupctlError):
    """The state database cannot be read (exposed as backupctl_state_up 0)."""


@dataclass(frozen=True)
class Run:
    """One finished run, as the metrics see it."""

    status: str
    finished_at: float  # Unix time
    details: dict[str, Any]


@dataclass(frozen=True)
class StateView:
    """The newest runs per kind/job/repository, generations and raised flags."""

    newest: dict[RunKey, Run] = field(default_factory=dict)  # newest finished run
    success: dict[RunKey, Run] = field(default_factory=dict)  # newest successful run
    restore: dict[tuple[str, str], Run] = field(default_factory=dict)  # newest measured restore
    generations: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    suspicious: frozenset[str] = frozenset()

    def repositories(self, kind: str, job: str) -> set[str]:
        return {repo for (k, j, repo) in self.newest if k == kind and j == job}


def unix(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _details(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _sqlite_path(url: str) -> Path | None:
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            return Path(url.removeprefix(prefix).split("?", 1)[0])
    return None


class StateReader:
    """Read-only access to the state database named by `database_url`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sqlite = _sqlite_path(url)
        self._engine: Engine | None = None

    def _connect_sqlite(self) -> sqlite3.Connection:
        assert self._sqlite is not None
        uri = self._sqlite.absolute().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=10, check_same_thread=False,
                               isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 10000")
        return conn

    def engine(self) -> Engine:
        if self._engine is None:
            if self._sqlite is not None:
                self._engine = create_engine("sqlite://", creator=self._connect_sqlite,
                                             poolclass=NullPool)
            else:
                url = self.url
                if url.startswith("postgresql://"):
                    url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
                self._engine = create_engine(url, poolclass=NullPool)
        return self._engine

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        if self._sqlite is not None and not self._sqlite.exists():
            raise StateUnavailable(
                f"state database {self._sqlite} does not exist yet (any backupctl command "
                "that uses state, e.g. `backupctl status`, creates it)")
        try:
            with self.engine().connect() as conn:
                if self._sqlite is not None:
                    conn.exec_driver_sql("BEGIN")  # deferred: one read snapshot, no write lock
                else:
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                try:
                    yield conn
                finally:
                    if self._sqlite is not None:
                        conn.exec_driver_sql("ROLLBACK")
                    else:
                        conn.rollback()
        except SQLAlchemyError as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise StateUnavailable(f"state database {_safe(self.url)}: "
                                   f"{exc.__class__.__name__}: {first}") from None

    def read(self) -> StateView:
        with self._snapshot() as conn:
            return StateView(newest=_newest(conn, success=False),
                             success=_newest(conn, success=True),
                             restore=_restores(conn), generations=_generations(conn),
                             suspicious=_suspicious(conn))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _newest(conn: Connection, *, success: bool) -> dict[RunKey, Run]:
    cond = runs.c.status == "success" if success else runs.c.status != "running"
    newest = (select(func.max(runs.c.id)).where(runs.c.kind.in_(KINDS), cond)
              .group_by(runs.c.job, runs.c.kind, runs.c.repository))
    rows = conn.execute(select(runs.c.job, runs.c.kind, runs.c.repository, runs.c.status,
                               runs.c.finished_at, runs.c.started_at, runs.c.details)
                        .where(runs.c.id.in_(newest)))
    return {(r.kind, r.job, r.repository): Run(
        status=r.status, finished_at=unix(r.finished_at or r.started_at),
        details=_details(r.details)) for r in rows}


def _restores(conn: Connection) -> dict[tuple[str, str], Run]:
    """The newest verify run per job/repository that measured a full restore.

    `Store.finish_run` writes details with json.dumps' default separators, so a measured
    restore reads `"restore_seconds": <number>`; the value is re-checked after parsing.
    """
    measured = and_(runs.c.kind == "verify", runs.c.status != "running",
                    runs.c.details.like('%"restore_seconds": %'),
                    runs.c.details.not_like('%"restore_seconds": null%'))
    newest = select(func.max(runs.c.id)).where(measured).group_by(runs.c.job,
                                                                  runs.c.repository)
    out: dict[tuple[str, str], Run] = {}
    for r in conn.execute(select(runs).where(runs.c.id.in_(newest))):
        details = _details(r.details)
        if number(details.get("restore_seconds")) is not None:
            out[(r.job, r.repository)] = Run(status=r.status,
                                             finished_at=unix(r.finished_at or r.started_at),
                                             details=details)
    return out


def _generations(conn: Connection) -> dict[tuple[str, str], tuple[int, int]]:
    newest = select(func.max(generations.c.id)).group_by(generations.c.job,
                                                         generations.c.repository)
    rows = conn.execute(select(generations.c.job, generations.c.repository,
                               generations.c.count.label("held"), generations.c.expected)
                        .where(generations.c.id.in_(newest)))
    return {(r.job, r.repository): (int(r.held), int(r.expected)) for r in rows}


def _suspicious(conn: Connection) -> frozenset[str]:
    rows = conn.execute(select(flags.c.job).distinct().where(
        flags.c.name == "suspicious", flags.c.cleared_at.is_(None)))
    return frozenset(r.job for r in rows)


def number(value: object) -> float | None:
    """A JSON number as float; None for anything else (bool, null, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _safe(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
