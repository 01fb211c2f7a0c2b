"""Keepalive settings for PostgreSQL connections: both ends, the admin's URL values win."""

from __future__ import annotations

import pytest

from backupctl.state import pgconn
from backupctl.state.leases import LeaseSettings


def test_ours_are_added_on_both_ends() -> None:
    args = pgconn.connect_args("postgresql://backupctl@db01/backupctl")
    assert args["keepalives"] == "1" and args["tcp_user_timeout"] == "30000"
    assert args["connect_timeout"] == "10"
    assert args["options"] == ("-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 "
                               "-c tcp_keepalives_count=4 -c tcp_user_timeout=30000")


def test_values_in_the_url_win() -> None:
    url = ("postgresql://backupctl@db01/backupctl?keepalives_idle=60"
           "&options=-c%20tcp_keepalives_idle%3D99")
    args = pgconn.connect_args(url)
    assert "keepalives_idle" not in args  # the URL's 60 stays
    # The admin's -c comes last, so it is the one PostgreSQL applies.
    assert args["options"].endswith("-c tcp_keepalives_idle=99")
    # The URL's client value applies to the server's end too.
    assert args["options"].startswith("-c tcp_keepalives_idle=60 ")


def test_short_keepalives_in_the_url_shorten_the_lease_watchdog() -> None:
    url = ("postgresql://u@h/d?keepalives_idle=2&keepalives_interval=1&keepalives_count=3"
           "&tcp_user_timeout=6000&connect_timeout=3")
    keepalive = pgconn.keepalive_of(url)
    assert keepalive == pgconn.Keepalive(idle=2, interval=1, count=3, user_timeout_ms=6000,
                                         connect_timeout=3)
    settings = LeaseSettings.following(keepalive)
    assert (settings.probe_interval, settings.probe_timeout) == (1.0, 2.0)
    assert pgconn.keepalive_of("postgresql://u@h/d?keepalives_idle=x") == pgconn.DEFAULT


def test_url_forms() -> None:
    assert pgconn.is_postgresql("postgresql://u@h/d")
    assert pgconn.is_postgresql("postgresql+psycopg://u@h/d")
    assert not pgconn.is_postgresql("sqlite:////var/lib/backupctl/state.db")
    assert pgconn.sqlalchemy_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert pgconn.libpq_url("postgresql+psycopg://u@h/d") == "postgresql://u@h/d"


@pytest.mark.parametrize(("keepalive", "seconds"), [
    (pgconn.Keepalive(), 30.0),  # probes at 10, 15, 20, 25, 30 s: the one at 30 gives up
    (pgconn.Keepalive(idle=2, interval=1, count=3, user_timeout_ms=6000), 6.0),
    (pgconn.Keepalive(idle=10, interval=5, count=4, user_timeout_ms=0), 30.0),
    (pgconn.Keepalive(idle=20, interval=5, count=4, user_timeout_ms=3000), 25.0),
])
def test_dead_after_follows_linux(keepalive: pgconn.Keepalive, seconds: float) -> None:
    assert keepalive.dead_after() == seconds


def test_the_watchdog_must_be_faster_than_the_server() -> None:
    LeaseSettings()  # the defaults: noticed within 15 s, freed after 30 s
    assert LeaseSettings.following(pgconn.DEFAULT) == LeaseSettings()
    with pytest.raises(ValueError, match="before the server frees it"):
        LeaseSettings(probe_interval=10, probe_timeout=25)
