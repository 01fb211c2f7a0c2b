"""The state database (SQLite by default, PostgreSQL via `database_url`).

Every write is one serialized transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL advisory
transaction lock), so a run's state row and its evidence record land together and
concurrent writers never fork the evidence chain.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from backupctl.clock import Clock, iso, system_clock
from backupctl.errors import BackupctlError
from backupctl.evidence import chain
from backupctl.state import pgconn
from backupctl.state.migrate import upgrade
from backupctl.state.schema import metadata, runs

ORCHESTRATOR = socket.gethostname()
_PG_CHAIN_LOCK = 0x6261636B  # "back": one advisory lock id for every write transaction


class StateError(BackupctlError):
    """The state database cannot be used."""


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
    def __init__(self, url: str, *, clock: Clock = system_clock,
                 orchestrator: str | None = None) -> None:
        self.url = url
        self.clock = clock
        self.orchestrator = orchestrator or ORCHESTRATOR  # config `orchestrator:`
        try:
            self.engine = _engine(url)
            with self.engine.begin() as conn:
                _serialize(conn)
                upgrade(conn, metadata)
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
            raise StateError(f"state database {safe_url(self.url)}: {exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0]}") from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StateError(f"state database {safe_url(self.url)}: {exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0]}") from None

    def now(self) -> str:
        return iso(self.clock())

    # -- runs ---------------------------------------------------------------------------

    def start_run(self, *, job: str, kind: str, repository: str = "primary",
                  operator: str = "scheduler", job_file_sha256: str | None = None) -> int:
        with self.transaction() as conn:
            result = conn.execute(runs.insert().returning(runs.c.id).values(
                job=job, kind=kind, repository=repository, status="running",
                started_at=self.now(), orchestrator=self.orchestrator, pid=os.getpid(),
                operator=operator, details="{}", job_file_sha256=job_file_sha256))
            return int(result.scalar_one())

    def finish_run(self, run_id: int, *, status: str, exit_code: int,
                   snapshot_id: str | None = None, snapshot_time: str | None = None,
                   error: str | None = None, details: dict[str, Any] | None = None,
                   evidence: dict[str, Any] | None = None,
                   extra: list[tuple[Any, list[dict[str, Any]]]] | None = None) -> str:
        """Close a run; append its evidence record and extra rows in the same transaction.

        Returns the finish time. `extra` is a list of (table, rows) inserted alongside.
        """
        finished = self.now()
        with self.transaction() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).one()
            conn.execute(update(runs).where(runs.c.id == run_id).values(
                status=status, exit_code=exit_code, finished_at=finished,
                snapshot_id=snapshot_id, snapshot_time=snapshot_time, error=error,
                details=json.dumps(details or {}, ensure_ascii=False, default=str)))
            for table, rows in extra or []:
                if rows:
                    conn.execute(table.insert(), rows)
            # Every finished run leaves exactly one record, also one that aborted before
            # its action could describe it (the error then is the record's details).
            if evidence is not None or row.kind in chain.KINDS:
                chain.append(conn, {
                    "kind": row.kind, "job": row.job, "repository": row.repository,
                    "snapshot_id": snapshot_id, "snapshot_time": snapshot_time,
                    "started_at": row.started_at, "finished_at": finished,
                    "operator": row.operator,
                    "result": "pass" if status == "success" else "fail",
                    **(evidence if evidence is not None else _bare_evidence(status, error))},
                    run_id=run_id)
        return finished

    def recover_interrupted(self, job: str) -> list[int]:
        """Mark this orchestrator's `running` rows of `job` as interrupted.

        Call only while holding the job's lock: then no run of the job is alive here, and a
        `running` row is what a killed process left behind.
        """
        with self.transaction() as conn:
            stale = [r.id for r in conn.execute(
                select(runs.c.id).where(runs.c.job == job, runs.c.status == "running",
                                        runs.c.orchestrator == self.orchestrator))]
            if stale:
                finished = self.now()
                error = ("interrupted: the process was killed or the machine stopped "
                         "before the run finished")
                conn.execute(update(runs).where(runs.c.id.in_(stale)).values(
                    status="interrupted", exit_code=1, finished_at=finished, error=error))
                for row in conn.execute(select(runs).where(runs.c.id.in_(stale))
                                        .order_by(runs.c.id)):
                    if row.kind not in chain.KINDS:
                        continue
                    chain.append(conn, {
                        "kind": row.kind, "job": row.job, "repository": row.repository,
                        "started_at": row.started_at, "finished_at": finished,
                        "operator": row.operator, "result": "fail",
                        **_bare_evidence("interrupted", error)}, run_id=row.id)
        return stale

    def last_run(self, job: str, kind: str, *, repository: str | None = None,
                 status: str | None = None) -> Any:
        query = select(runs).where(runs.c.job == job, runs.c.kind == kind)
        if repository is not None:
            query = query.where(runs.c.repository == repository)
        if status is not None:
            query = query.where(runs.c.status == status)
        with self.read() as conn:
            return conn.execute(query.order_by(runs.c.id.desc()).limit(1)).first()



def _serialize(conn: Connection) -> None:
    """Make the transaction the only writer: SQLite's BEGIN IMMEDIATE already is (see
    `_engine`); PostgreSQL takes one advisory lock shared by every backupctl writer."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_CHAIN_LOCK})")


def _bare_evidence(status: str, error: str | None) -> dict[str, Any]:
    """Evidence fields for a run whose action recorded none (aborted or interrupted)."""
    from backupctl import __version__

    return {"host": "unknown", "details": {"status": status, "error": error},
            "backupctl_version": __version__, "restic_version": "unknown"}


def safe_url(url: str) -> str:
    """A database URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
