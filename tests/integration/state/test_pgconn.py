"""The state database's PostgreSQL connections carry keepalives on both ends (issue #15): the
server applies our per-session settings, and an established connection whose network is cut
silently fails in bounded time instead of hanging."""

from __future__ import annotations

import subprocess
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from backupctl.state.db import Store
from tests.conftest import Postgres, need

CUT_ADDRESS = "127.0.0.2"


def _show(store: Store, *names: str) -> list[str]:
    with store.read() as conn:
        return [str(conn.execute(text(f"SHOW {name}")).scalar()) for name in names]


def test_the_server_end_of_every_state_connection_probes_its_client(postgres: Postgres) -> None:
    store = Store(postgres.empty_url())
    assert _show(store, "tcp_keepalives_idle", "tcp_keepalives_interval",
                 "tcp_keepalives_count", "tcp_user_timeout") == ["10", "5", "4", "30000"]
    with store.engine.connect() as conn:  # and our end probes the server
        params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    assert {k: params.get(k) for k in ("keepalives", "keepalives_idle", "tcp_user_timeout",
                                       "connect_timeout")} == {
        "keepalives": "1", "keepalives_idle": "10", "tcp_user_timeout": "30000",
        "connect_timeout": "10"}


def test_an_admins_settings_in_the_url_win(postgres: Postgres) -> None:
    store = Store(postgres.empty_url() + "?options=-c%20tcp_keepalives_idle%3D42")
    assert _show(store, "tcp_keepalives_idle", "tcp_keepalives_interval") == ["42", "5"]


@pytest.mark.slow
def test_a_silently_cut_connection_fails_in_bounded_time(postgres: Postgres) -> None:
    """A transaction open when every packet starts to be dropped: the next statement fails
    (tcp_user_timeout, short here through the URL) instead of waiting forever."""
    iptables = need("iptables")
    postgres.empty_url()
    store = Store(postgres.url_via(CUT_ADDRESS) + "?tcp_user_timeout=3000&keepalives_idle=1"
                  "&keepalives_interval=1&keepalives_count=2")
    outcome: list[BaseException | None] = []
    rules = [["-i", "lo", "-d", CUT_ADDRESS, "-p", "tcp", "--dport", str(postgres.port),
              "-j", "DROP"],
             ["-i", "lo", "-s", CUT_ADDRESS, "-p", "tcp", "--sport", str(postgres.port),
              "-j", "DROP"]]
    added: list[list[str]] = []
    with store.engine.connect() as conn:
        conn.execute(text("SELECT 1"))

        def statement() -> None:
            try:
                conn.execute(text("SELECT 2"))
                outcome.append(None)
            except OperationalError as exc:
                outcome.append(exc)

        try:
            for rule in rules:
                subprocess.run([iptables, "-I", "INPUT", *rule], check=True)
                added.append(rule)
            worker = threading.Thread(target=statement, daemon=True)
            worker.start()
            worker.join(120)  # a guard against hanging the suite, not a timing assertion
        finally:
            for rule in added:
                subprocess.run([iptables, "-D", "INPUT", *rule], check=False)
        assert not worker.is_alive(), "the statement hung on a silently cut connection"
    [error] = outcome
    assert isinstance(error, OperationalError), error
