"""A channel that is down, refuses the login or hangs: delivery gives up within its bound,
the outcome is recorded as failed, and the caller gets its result back unchanged."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from backupctl.notify import after_run, notify_test
from backupctl.notify.channels import Budget
from backupctl.state.schema import evidence, notices
from tests.conftest import free_port
from tests.integration.notify.conftest import FAST, SMTP_PASSWORD, Site
from tests.notify_servers import Silent, SmtpServer, start_smtp


def _recorded(site: Site) -> list[tuple[str, str, str | None]]:
    store = site.store()
    with store.read() as conn:
        rows = conn.execute(select(notices.c.channel, notices.c.result, notices.c.error)
                            .order_by(notices.c.id)).all()
        kinds = conn.execute(select(evidence.c.result).where(evidence.c.kind == "notice")).all()
    assert len(kinds) == len(rows)
    return [(r.channel, r.result, r.error) for r in rows]


def test_smtp_server_down(site: Site) -> None:
    site.email("it-mail", f"smtp://127.0.0.1:{free_port()}")
    config = site.config()
    store = site.store()
    site.run(store)
    failed = site.run(store, status="failed", error="x")
    (result,) = after_run(config, store, failed, budget=FAST, now=site.clock)
    assert not result.ok and result.attempts == 2
    assert result.error is not None and "cannot connect" in result.error
    assert _recorded(site) == [("it-mail", "failed", result.error)]


def test_smtp_login_refused_is_not_retried(site: Site, tmp_path: Path) -> None:
    server = start_smtp(tmp_path / "smtp", user="backupctl", password="the-right-one")
    try:
        site.email("it-mail", server.url(user="backupctl"), password=SMTP_PASSWORD)
        config = site.config()
        store = site.store()
        (result,) = notify_test(config, store, budget=FAST)
        assert not result.ok and result.attempts == 1
        assert result.error is not None and "refused the login" in result.error
        assert SMTP_PASSWORD not in result.error
        assert server.messages() == []
    finally:
        server.stop()


def test_smtp_server_that_never_answers(site: Site, silent_server: Silent) -> None:
    site.email("it-mail", f"smtp://127.0.0.1:{silent_server.port}")
    config = site.config()
    store = site.store()
    site.run(store)
    failed = site.run(store, status="failed", error="x")
    (result,) = after_run(config, store, failed, budget=FAST, now=site.clock)
    assert not result.ok
    assert result.error is not None and "timed out" in result.error
    assert silent_server.held  # it really connected, and the server really said nothing


def test_a_dead_channel_does_not_stop_a_live_one(site: Site, smtp_server: SmtpServer,
                                                 silent_server: Silent) -> None:
    site.email("dead", f"smtp://127.0.0.1:{silent_server.port}")
    site.email("live", smtp_server.url())
    config = site.config()
    store = site.store()
    results = notify_test(config, store, budget=Budget(seconds=2.0, attempt=1.0, attempts=1))
    assert [(r.channel, r.ok) for r in results] == [("dead", False), ("live", True)]
    assert len(smtp_server.messages()) == 1


def test_apprise_target_down(site: Site) -> None:
    site.apprise("chat", f"json://127.0.0.1:{free_port()}/hook")
    config = site.config()
    store = site.store()
    (result,) = notify_test(config, store, budget=FAST)
    assert not result.ok and result.attempts == 2
    assert result.error is not None and "apprise" in result.error.lower()
    assert "/hook" not in result.error  # the URL (it may hold a token) is never shown
