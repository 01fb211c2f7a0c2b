"""`backupctl exporter`: serve /metrics (state read on every scrape), /healthz and the status
page (`/`, backupctl.web, handed in by the CLI) over HTTP; read-only (GET and HEAD).

Job files are re-read when the configuration file, the jobs directory or a job file
changes (checked by mtime on each scrape); a job file that does not validate is left out and
exposed as `backupctl_job_file_invalid` (the others are served), an invalid global
configuration keeps the previous jobs and is logged. SIGTERM/SIGINT stop the server cleanly
(exit 0).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry

from backupctl.config.schema import Job
from backupctl.config.validate import Config, load_config
from backupctl.errors import BackupctlError, ConfigError, UsageError
from backupctl.metrics import (
    Source,
    StateCollector,
    invalid_files,
    notify_channels,
    registry,
    render,
)
from backupctl.state.view import StateUnavailable

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:9810"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
StartResponse = Callable[..., Any]


def parse_listen(text: str) -> tuple[str, int]:
    """`ADDR:PORT` (`[v6]:PORT` for IPv6) → (address, port); a usage error otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        if host != "localhost":
            ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not host or not 0 < number < 65536:
        raise UsageError(f"--listen {text!r}: use ADDR:PORT, e.g. {DEFAULT_LISTEN} or "
                         "[::1]:9810 (an IP address, or localhost)")
    return host, number


class JobsWatcher:
    """The configured jobs, reloaded when the configuration's files change."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._stamp = self._fingerprint()
        self._lock = threading.Lock()

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        paths = [self.config.path, self.config.settings.jobs_dir]
        jobs_dir = self.config.settings.jobs_dir
        with contextlib.suppress(OSError):
            paths += sorted([*jobs_dir.glob("*.yaml"), *jobs_dir.glob("*.yml")])
        out = []
        for path in paths:
            try:
                st = path.stat()
                out.append((str(path), st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(path), -1, -1))
        return tuple(out)

    def __call__(self) -> list[Job]:
        with self._lock:
            stamp = self._fingerprint()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self.config = load_config(self.config.path, partial=True)
                    log.info("exporter: reloaded %d job(s) from %s", len(self.config.jobs),
                             self.config.settings.jobs_dir)
                except ConfigError as exc:
                    log.error("exporter: configuration changed but is invalid, keeping the "
                              "previous jobs: %s", "; ".join(exc.messages))
            return [jf.job for _, jf in sorted(self.config.jobs.items())]

    def channels(self) -> list[str]:
        """The notification channels of the (last loaded) configuration."""
        with self._lock:
            return notify_channels(self.config)

    def invalid(self) -> list[str]:
        """The job files of the (last loaded) configuration that do not validate."""
        with self._lock:
            return invalid_files(self.config)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the journal."""


# Every answer: nothing on the page may load from elsewhere, run a script, be framed or
# leak the address it was read at (the page itself has no script and no form).
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; "
     "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
]
METHODS = ("GET", "HEAD")


class Page(Protocol):
    """A WSGI application for `paths` (the status page, backupctl.web)."""

    paths: frozenset[str]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse,
                 ) -> Iterable[bytes]: ...


class Exporter:
    """The WSGI application: /metrics, /healthz, and the status page (or a small index)."""

    def __init__(self, source: Source, page: Page | None = None) -> None:
        self.source = source
        self.page = page
        self.registry: CollectorRegistry
        self.collector: StateCollector
        self.registry, self.collector = registry(source)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse,
                 ) -> Iterable[bytes]:
        def respond(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            return start_response(status, [*headers, *SECURITY_HEADERS], *exc)

        method = environ.get("REQUEST_METHOD", "GET")
        if method not in METHODS:  # read-only: nothing here changes anything
            data = b"405: read-only (GET and HEAD only)\n"
            respond("405 Method Not Allowed", [("Allow", ", ".join(METHODS)),
                                               ("Content-Type", "text/plain; charset=utf-8"),
                                               ("Content-Length", str(len(data)))])
            return [data]
        body = self._route(environ, respond)
        if method == "HEAD":
            return []
        return body

    def _route(self, environ: dict[str, Any], start_response: StartResponse,
               ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if self.page is not None and path in self.page.paths:
            return self.page(environ, start_response)
        if path == "/metrics":
            body = render(self.registry)
            start_response("200 OK", [("Content-Type", CONTENT_TYPE),
                                      ("Content-Length", str(len(body)))])
            return [body]
        if path == "/healthz":
            try:
                self.source.reader.ping()
            except StateUnavailable as exc:
                return _text(start_response, "503 Service Unavailable", f"state: {exc}\n")
            return _text(start_response, "200 OK", "ok\n")
        if path == "/":
            return _text(start_response, "200 OK", "backupctl exporter: /metrics /healthz\n")
        return _text(start_response, "404 Not Found", "not found: try /metrics\n")


def _text(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(data)))])
    return [data]


def serve(app: Exporter, listen: str, *, ready: Callable[[str], None] | None = None,
          stop: threading.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or `stop` is set); then shut down cleanly."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("Server", (_Server,), {"address_family": family})
    try:
        server: WSGIServer = make_server(host, port, app, server_class=server_class,
                             handler_class=_QuietHandler)
    except OSError as exc:
        raise BackupctlError(f"exporter: cannot listen on {listen}: {exc.strerror or exc}; "
                             "is another exporter running? choose another --listen") from None
    stop = stop or threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("exporter: signal %d, shutting down", signum)
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                              name="exporter", daemon=True)
    thread.start()
    shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    log.info("exporter: serving http://%s/metrics", shown)
    if ready is not None:
        ready(shown)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        app.source.reader.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("exporter: stopped")
