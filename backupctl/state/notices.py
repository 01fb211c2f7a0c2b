"""Notification deliveries (SPEC §8): who was told what, and whether a run was already told.

Functions of a connection, as in backupctl.state.queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from backupctl.state.schema import notices


def insert_notices(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    conn.execute(notices.insert(), list(rows))


PING_CHANNEL = "ping"  # notices of the dead-man's-switch pings (not messages to people)


def run_notified(conn: Connection, run_id: int) -> bool:
    """True when some message (not a ping) about this run was already attempted."""
    return conn.execute(select(notices.c.id).where(
        notices.c.run_id == run_id, notices.c.channel != PING_CHANNEL).limit(1)).first() \
        is not None


def last_notice(conn: Connection, *, job: str, kind: str, repository: str,
                event: str) -> str | None:
    """When a notice of `event` about (job, kind, repository) last reached some channel."""
    value = conn.execute(select(notices.c.sent_at).where(
        notices.c.job == job, notices.c.kind == kind, notices.c.repository == repository,
        notices.c.event == event, notices.c.result == "ok").order_by(
        notices.c.id.desc()).limit(1)).scalar()
    return str(value) if value else None
