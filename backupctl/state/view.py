"""The metrics' view of the state database: read-only, one snapshot, a few queries.

The exporter reads state on every scrape, so this never writes (no table creation, no
crash recovery, no `BEGIN IMMEDIATE`): SQLite is opened with `mode=ro` (it works under
systemd's `ReadOnlyPaths=`) and PostgreSQL in a read-only REPEATABLE READ transaction, so
every query of one scrape sees the same state.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, TextClause, create_engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool, QueuePool

from backupctl.config.schema import Job
from backupctl.errors import BackupctlError
from backupctl.state.db import safe_url
from backupctl.state.pgconn import sqlalchemy_url
from backupctl.state.proofs import Freshness, freshness
from backupctl.state.schema import flags, generations, notices, runs

RunKey = tuple[str, str, str]  # (kind, job, repository)
T = TypeVar("T")


class StateUnavailable(BackupctlError):
    """The state database cannot be read (exposed as backupctl_state_up 0)."""


@dataclass(frozen=True)
class Run:
    """One finished run, as the metrics see it."""

    status: str
    finished_at: float  # Unix time
    details: str  # JSON: read it with records.read(Model, run.details)
    restore_ms: int | None = None
    # for people (the status page): who ran it, and the error only to classify it
    # (notify.reason), never to show it
    orchestrator: str = ""
    exit_code: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class StateView:
    """The newest runs per kind/job/repository, generations and raised flags."""

    newest: dict[RunKey, Run] = field(default_factory=dict)  # newest finished run
    success: dict[RunKey, Run] = field(default_factory=dict)  # newest successful run
    restore: dict[tuple[str, str], Run] = field(default_factory=dict)  # newest measured restore
    generations: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    suspicious: frozenset[str] = frozenset()
    # channel → (newest delivery succeeded, Unix time of the newest success or None)
    channels: dict[str, tuple[bool, float | None]] = field(default_factory=dict)
    # job (with verify.prove_within) → how fresh the proofs of its newest snapshot are
    proofs: dict[str, Freshness] = field(default_factory=dict)

    def repositories(self, kind: str, job: str) -> set[str]:
        return {repo for (k, j, repo) in self.newest if k == kind and j == job}


def unix(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


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
                # one kept connection keeps SQLite's page cache warm between scrapes
                self._engine = create_engine("sqlite://", creator=self._connect_sqlite,
                                             poolclass=QueuePool, pool_size=1,
                                             max_overflow=4, pool_recycle=300)
            else:
                self._engine = create_engine(sqlalchemy_url(self.url), poolclass=NullPool)
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
            raise StateUnavailable(f"state database {safe_url(self.url)}: "
                                   f"{exc.__class__.__name__}: {first}") from None

    def read(self, jobs: Sequence[Job]) -> StateView:
        """The newest runs of these jobs (their configured repositories only)."""
        return self.read_with(jobs, lambda _conn: None)[0]

    def read_with(self, jobs: Sequence[Job], extra: Callable[[Connection], T],
                  ) -> tuple[StateView, T]:
        """The view and `extra(conn)` (named queries of state.queries) from one read
        snapshot, so a page built from both never mixes two moments."""
        with self._snapshot() as conn:
            view = replace(_view(conn, run_keys(jobs)), proofs=freshness(
                conn, [j.name for j in jobs if j.verify.prove_within is not None]))
            return view, extra(conn)

    def ping(self) -> None:
        """Raise StateUnavailable unless the runs table can be read."""
        with self._snapshot() as conn:
            conn.execute(select(runs.c.id).limit(1)).all()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _view(conn: Connection, keys: Sequence[RunKey]) -> StateView:
    ids = _newest_ids(conn, keys)
    rows = _rows(conn, {i for triple in ids.values() for i in triple if i is not None})
    newest, success, restore = {}, {}, {}
    for key, (last, good, measured) in ids.items():
        if last is not None:
            newest[key] = rows[last]
        if good is not None:
            success[key] = rows[good]
        if measured is not None:
            restore[(key[1], key[2])] = rows[measured]
    return StateView(newest=newest, success=success, restore=restore,
                     generations=_generations(conn, sorted({(j, r) for _, j, r in keys})),
                     suspicious=_suspicious(conn), channels=_channels(conn))


def run_keys(jobs: Sequence[Job]) -> list[RunKey]:
    keys: list[RunKey] = []
    for job in jobs:
        keys += [("backup", job.name, "primary"), ("verify", job.name, "primary"),
                 ("recovery", job.name, "primary")]
        for copy in job.copies:
            keys += [("copy", job.name, copy.name), ("verify", job.name, copy.name)]
            if copy.kind == "immutable":
                keys.append(("probe", job.name, copy.name))
    return keys


@functools.lru_cache(maxsize=16)
def _statement(template: str, names: tuple[str, ...], count: int) -> TextClause:
    """`template` behind `WITH keys(a, b) AS (VALUES (:k0_0, :k0_1), ...)` (parsed once)."""
    tuples = ", ".join("(" + ", ".join(f":k{i}_{j}" for j in range(len(names))) + ")"
                       for i in range(count))
    return text(template.format(keys=f"WITH keys({', '.join(names)}) AS (VALUES {tuples})"))


def _params(rows: Sequence[Sequence[str]]) -> dict[str, str]:
    return {f"k{i}_{j}": value for i, row in enumerate(rows) for j, value in enumerate(row)}


# Each newest row is found by walking the (job, kind, id) index backwards from the newest
# run and stopping at the first match: a scrape costs the same after years of history.
_NEWEST = """
{keys}
SELECT k.job, k.kind, k.repository,
  (SELECT r.id FROM runs r WHERE r.job = k.job AND r.kind = k.kind
     AND r.repository = k.repository AND r.status <> 'running'
     ORDER BY r.id DESC LIMIT 1) AS newest,
  (SELECT r.id FROM runs r WHERE r.job = k.job AND r.kind = k.kind
     AND r.repository = k.repository AND r.status = 'success'
     ORDER BY r.id DESC LIMIT 1) AS success,
  CASE WHEN k.kind = 'verify' THEN
    (SELECT r.id FROM runs r WHERE r.job = k.job AND r.kind = k.kind
       AND r.repository = k.repository AND r.status <> 'running'
       AND r.restore_ms IS NOT NULL
       ORDER BY r.id DESC LIMIT 1) END AS restore
FROM keys k
"""

_GENERATIONS = """
{keys}
SELECT k.job, k.repository,
  (SELECT g.id FROM generations g WHERE g.job = k.job AND g.repository = k.repository
     ORDER BY g.id DESC LIMIT 1) AS newest
FROM keys k
"""


def _newest_ids(conn: Connection, keys: Sequence[RunKey],
                ) -> dict[RunKey, tuple[int | None, int | None, int | None]]:
    if not keys:
        return {}
    statement = _statement(_NEWEST, ("job", "kind", "repository"), len(keys))
    rows = conn.execute(statement, _params([(j, k, r) for k, j, r in keys]))
    return {(r.kind, r.job, r.repository): (r.newest, r.success, r.restore) for r in rows}


def _rows(conn: Connection, ids: set[int]) -> dict[int, Run]:
    if not ids:
        return {}
    rows = conn.execute(select(runs.c.id, runs.c.status, runs.c.finished_at, runs.c.started_at,
                               runs.c.details, runs.c.restore_ms, runs.c.orchestrator,
                               runs.c.exit_code, runs.c.error)
                        .where(runs.c.id.in_(sorted(ids))))
    return {r.id: Run(status=r.status, finished_at=unix(r.finished_at or r.started_at),
                      details=r.details or "{}", restore_ms=r.restore_ms,
                      orchestrator=r.orchestrator, exit_code=r.exit_code, error=r.error)
            for r in rows}


def _generations(conn: Connection, keys: Sequence[tuple[str, str]],
                 ) -> dict[tuple[str, str], tuple[int, int]]:
    if not keys:
        return {}
    statement = _statement(_GENERATIONS, ("job", "repository"), len(keys))
    ids = [r.newest for r in conn.execute(statement, _params(keys))
           if r.newest is not None]
    if not ids:
        return {}
    rows = conn.execute(select(generations.c.job, generations.c.repository,
                               generations.c.count.label("held"), generations.c.expected)
                        .where(generations.c.id.in_(ids)))
    return {(r.job, r.repository): (int(r.held), int(r.expected)) for r in rows}


def _suspicious(conn: Connection) -> frozenset[str]:
    rows = conn.execute(select(flags.c.job).distinct().where(
        flags.c.name == "suspicious", flags.c.cleared_at.is_(None)))
    return frozenset(r.job for r in rows)


def _channels(conn: Connection) -> dict[str, tuple[bool, float | None]]:
    """Per notification channel: the newest delivery's result and the newest success."""
    newest = select(func.max(notices.c.id)).group_by(notices.c.channel).scalar_subquery()
    ok = notices.alias("ok")
    success = (select(ok.c.sent_at).where(ok.c.channel == notices.c.channel,
                                          ok.c.result == "ok")
               .order_by(ok.c.id.desc()).limit(1).scalar_subquery())
    rows = conn.execute(select(notices.c.channel, notices.c.result, success.label("last_ok"))
                        .where(notices.c.id.in_(newest)))
    return {r.channel: (r.result == "ok", unix(r.last_ok) if r.last_ok else None)
            for r in rows}


@dataclass(frozen=True)
class Outcome:
    """A finished run as a day of the status page's strip counts it."""

    job: str
    kind: str
    status: str
    finished_at: str  # ISO 8601 UTC


def outcomes_since(conn: Connection, jobs: Sequence[str], kinds: Sequence[str], *,
                   since: str) -> list[Outcome]:
    """Finished runs of these jobs and kinds that ended at or after `since` (ISO UTC): a
    range of the `runs_finished` index, however long the history."""
    if not jobs:
        return []
    wanted = set(jobs)
    rows = conn.execute(select(runs.c.job, runs.c.kind, runs.c.status, runs.c.finished_at)
                        .where(runs.c.finished_at >= since, runs.c.kind.in_(sorted(kinds)),
                               runs.c.status != "running"))
    return [Outcome(job=r.job, kind=r.kind, status=r.status, finished_at=r.finished_at)
            for r in rows if r.job in wanted]
