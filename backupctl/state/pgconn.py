"""PostgreSQL connections that notice a dead network in bounded time.

A silently cut network (a dead switch, a VPN that stops forwarding) delivers neither data nor
a reset. Without keepalives the client waits for hours and the server keeps the session, and
with it every lock the session holds (a job lease, the evidence chain's write lock), for as
long. So both ends are told to probe:

- the client (libpq `keepalives*`, `tcp_user_timeout`, `connect_timeout`): a write, a read or
  a connection attempt fails after about `user_timeout` instead of hanging;
- the server, per session (startup `options`: `tcp_keepalives_*`, `tcp_user_timeout`): the
  backend ends a session whose client went silent and PostgreSQL releases its advisory locks.

The settings travel in the connection's startup packet, so they cost no round trip. Values
the admin put in `database_url` (`?keepalives_idle=…&tcp_user_timeout=…`) win over ours and
apply to both ends (`keepalive_of`); the job leases' watchdog follows them too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class Keepalive:
    """TCP liveness settings, used on both ends of a connection.

    With the defaults a silent peer is given up after about 30 s: the first probe after 10 s
    of silence, then one every 5 s, and the kernel ends the connection once nothing was
    acknowledged for `user_timeout_ms` (Linux lets TCP_USER_TIMEOUT decide when keepalive
    probes go unanswered).
    """

    idle: int = 10  # seconds of silence before the first probe
    interval: int = 5  # seconds between probes
    count: int = 4  # unanswered probes before giving up (when no user timeout applies)
    user_timeout_ms: int = 30_000  # unacknowledged data or probes this long: dead
    connect_timeout: int = 10  # seconds for a new connection (libpq; minimum 2)

    def dead_after(self) -> float:
        """Seconds of silence after which the kernel ends the connection (Linux rule: the
        first keepalive tick at or after `user_timeout`, or `count` probes without one)."""
        if self.user_timeout_ms <= 0:
            return float(self.idle + self.interval * self.count)
        limit = self.user_timeout_ms / 1000
        ticks = max(1, -(-(limit - self.idle) // self.interval))
        return float(max(self.idle + ticks * self.interval, limit))

    def client_args(self) -> dict[str, str]:
        """libpq connection parameters for our end."""
        return {"keepalives": "1", "keepalives_idle": str(self.idle),
                "keepalives_interval": str(self.interval),
                "keepalives_count": str(self.count),
                "tcp_user_timeout": str(self.user_timeout_ms),
                "connect_timeout": str(self.connect_timeout)}

    def server_options(self) -> str:
        """`-c name=value` settings for the server's end of this session (libpq `options`)."""
        return " ".join(f"-c {name}={value}" for name, value in (
            ("tcp_keepalives_idle", self.idle), ("tcp_keepalives_interval", self.interval),
            ("tcp_keepalives_count", self.count), ("tcp_user_timeout", self.user_timeout_ms)))


DEFAULT = Keepalive()


def is_postgresql(url: str) -> bool:
    return url.startswith(("postgresql://", "postgresql+", "postgres://"))


def sqlalchemy_url(url: str) -> str:
    """`database_url` as SQLAlchemy's psycopg 3 dialect wants it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def libpq_url(url: str) -> str:
    """`database_url` as libpq (psycopg.connect) wants it: no SQLAlchemy driver suffix."""
    if url.startswith("postgresql+"):
        return "postgresql://" + url.split("://", 1)[1]
    return url


_URL_KEYS = {"keepalives_idle": "idle", "keepalives_interval": "interval",
             "keepalives_count": "count", "tcp_user_timeout": "user_timeout_ms",
             "connect_timeout": "connect_timeout"}


def keepalive_of(url: str) -> Keepalive:
    """The settings `url` asks for (libpq parameters in its query), ours for the rest."""
    query: Mapping[str, object] = make_url(sqlalchemy_url(url)).query
    values = {name: int(raw) for key, name in _URL_KEYS.items()
              if isinstance(raw := query.get(key), str) and raw.strip().isdigit()}
    return dataclasses.replace(DEFAULT, **values)


def connect_args(url: str, keepalive: Keepalive | None = None, *,
                 extra_options: str = "") -> dict[str, str]:
    """Connection parameters to add to `url`: ours, minus what the URL already sets.

    `keepalive` defaults to `keepalive_of(url)`, so the server's end follows the URL too.
    The server settings go before the URL's own `options`, so an admin's `-c` still wins.
    """
    keepalive = keepalive or keepalive_of(url)
    query: Mapping[str, object] = make_url(sqlalchemy_url(url)).query
    args = {k: v for k, v in keepalive.client_args().items() if k not in query}
    own = query.get("options")
    mine = " ".join(part for part in (keepalive.server_options(), extra_options) if part)
    args["options"] = f"{mine} {own}" if isinstance(own, str) and own else mine
    return args
