"""Dead-man's-switch pings against hostile and broken endpoints (issue #24): a server that
answers one byte a second, refuses, answers 503 or speaks no TLS. A ping never holds a run
beyond its hard deadline, and what went wrong is recorded as a class, never a text that
could quote the check URL's token."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import select

from backupctl.notify import ping_start
from backupctl.notify.channels import Budget, hard_deadline
from backupctl.notify.ping import PING_BUDGET, ping
from backupctl.state.schema import notices
from tests import yaml_helpers
from tests.conftest import Workspace, free_port
from tests.integration.notify.conftest import TOKEN, Site, secret_file
from tests.notify_servers import HttpReceiver, Trickle


def _pings(site: Site) -> list[tuple[str, str, str | None, int]]:
    with site.store().read() as conn:
        rows = conn.execute(select(notices.c.event, notices.c.result, notices.c.error,
                                   notices.c.attempts).where(notices.c.channel == "ping")
                            .order_by(notices.c.id)).all()
    return [(r.event, r.result, r.error, r.attempts) for r in rows]


def test_a_trickling_endpoint_is_abandoned_at_the_hard_deadline(
        site: Site, trickle_server: Trickle) -> None:
    site.ping_url("backup", trickle_server.url(f"/ping/{TOKEN}"))
    config = site.config()
    store = site.store()

    started = time.monotonic()
    result = ping_start(config, store, job="emr-db", kind="backup")
    took = time.monotonic() - started

    assert result is not None and not result.ok and result.error == "timeout"
    assert trickle_server.requests and trickle_server.sent >= 2  # it really was trickling
    # PING_BUDGET's hard deadline bounds it (generously: a loaded machine), far below the
    # minutes the trickle would take.
    assert took < hard_deadline(PING_BUDGET) + 10, took
    assert _pings(site) == [("ping-start", "failed", "timeout", result.attempts)]


@pytest.mark.parametrize(("where", "error", "attempts"), [
    ("refused", "connection refused", 2), ("http 503", "http 503", 2),
    ("http 404", "http 404", 1), ("tls", "tls", 2)])
def test_a_failed_ping_is_recorded_by_class_never_by_its_text(
        site: Site, http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture,
        where: str, error: str, attempts: int) -> None:
    url = {"refused": f"http://127.0.0.1:{free_port()}/ping/{TOKEN}",
           "tls": http_receiver.url(f"/ping/{TOKEN}", scheme="https")}.get(
        where, http_receiver.url(f"/ping/{TOKEN}"))
    if where.startswith("http "):
        http_receiver.status = int(where.split()[1])
    site.ping_url("backup", url)
    config = site.config()
    budget = Budget(seconds=3.0, attempt=1.0, attempts=2)

    with caplog.at_level(logging.DEBUG, logger="backupctl"):
        result = ping(config.job("emr-db"), "backup", "start", body="emr-db backup started",
                      budget=budget, sleep=lambda _s: None)

    assert result is not None and (result.ok, result.error, result.attempts) == (
        False, error, attempts)
    assert TOKEN not in caplog.text and "127.0.0.1" not in caplog.text


def test_a_ping_file_with_a_trailing_space_sends_the_stripped_url_and_leaks_nothing(
        site: Site, http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    site.ping_url("backup", http_receiver.url(f"/ping/{TOKEN}") + " \r")
    config = site.config()
    store = site.store()
    http_receiver.status = 503

    with caplog.at_level(logging.DEBUG, logger="backupctl"):
        result = ping_start(config, store, job="emr-db", kind="backup")

    assert result is not None and result.error == "http 503"
    assert http_receiver.paths()[0] == f"/ping/{TOKEN}/start"
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(row) for row in _pings(site))


def test_a_backup_with_a_trickling_ping_finishes_within_the_ping_deadlines(
        workspace: Workspace, trickle_server: Trickle) -> None:
    """The real CLI: `URL/start` and `URL` both meet the trickle; the backup is recorded a
    success and ends within its own time plus two hard deadlines, not after the minutes the
    trickle would take."""
    ws = workspace
    data = ws.job("emr-db")
    data["notify"] = {"ping": {"backup": str(secret_file(
        ws.root / "secrets" / "hc-backup", trickle_server.url(f"/ping/{TOKEN}")))}}
    (ws.jobs_dir / "emr-db.yaml").write_text(yaml_helpers.dump(data))
    (ws.root / "src" / "emr-db" / "data.txt").write_text("EMR data\n")

    started = time.monotonic()
    done = ws.run("backup", "emr-db", timeout=300)
    took = time.monotonic() - started

    assert done.returncode == 0, done.stderr
    assert len(trickle_server.requests) == 2  # start and success both reached it
    # Two pings, each cut at its hard deadline; the rest is the backup itself (seconds).
    assert took < 2 * hard_deadline(PING_BUDGET) + 60, took
    assert TOKEN not in done.stdout + done.stderr
    assert done.stderr.count("no answer within") == 2, done.stderr
