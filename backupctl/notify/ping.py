"""The dead-man's switch: healthchecks.io-compatible pings per job and kind of run.

`URL/start` when a run starts, `URL` when it succeeds, `URL/fail` when it does not, each a
POST with one line of text. An external checker (healthchecks.io, a self-hosted
healthchecks, Uptime Kuma's push monitor, …) then notices when nothing arrives at all —
the orchestrator being down is the one failure backupctl cannot report itself.

The URL is read from the job's `notify.ping.KIND` file (config.notify.read_ping_url: it holds
a token, is masked everywhere and never logged). A ping never holds a run: a few attempts
with short timeouts inside `PING_BUDGET`, and over all of it the hard deadline of channel
delivery (channels.within), which also stops an endpoint that answers one byte a second.
What failed is recorded as a class (`timeout`, `http 503`, `connection refused`, `tls`, …),
never as an exception's text, which can quote the URL.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from backupctl.config.notify import PingFileError, read_ping_url
from backupctl.config.schema import Job
from backupctl.notify.channels import Budget, hard_deadline, within
from backupctl.notify.model import PingResult

log = logging.getLogger(__name__)

Signal = Literal["start", "success", "fail"]
_SUFFIX = {"start": "/start", "success": "", "fail": "/fail"}
PING_BUDGET = Budget(seconds=6.0, attempt=3.0, attempts=3)
PINGED_KINDS = ("backup", "copy", "verify")
TIMEOUT = "timeout"


class Failed(Exception):
    """One attempt failed; `what` is its class, safe to record (never the URL)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class Again(Failed):
    """Worth another attempt (the server was unreachable, slow or answered 5xx)."""


def ping_url(base: str, signal: Signal) -> str:
    return base.rstrip("/") + _SUFFIX[signal]


def error_class(exc: BaseException) -> str:
    """What went wrong, in words that never quote the URL or the server's answer."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"http {exc.code}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    checks: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (TimeoutError, TIMEOUT), (ssl.SSLError, "tls"),
        (ssl.CertificateError, "tls"), (ConnectionRefusedError, "connection refused"),
        ((ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
          http.client.RemoteDisconnected), "connection reset"),
        (socket.gaierror, "name not resolved"), (http.client.InvalidURL, "invalid url"),
        (http.client.HTTPException, "bad answer"),
        (OSError, "network error"), (ValueError, "invalid url")]
    return next((what for kinds, what in checks if isinstance(exc, kinds)), "error")


def _post(url: str, body: str, timeout: float) -> None:
    request = urllib.request.Request(  # noqa: S310 (scheme checked: http/https only)
        url, data=body.encode("utf-8"), method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "backupctl"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(1024)
    except urllib.error.HTTPError as exc:
        # 4xx: the check URL is wrong (another attempt cannot help), but for a slow or
        # rate-limited checker; 5xx: try again.
        again = not 400 <= exc.code < 500 or exc.code in (408, 429)
        raise (Again if again else Failed)(error_class(exc)) from None
    except Exception as exc:  # every network failure: its class only
        raise Again(error_class(exc)) from None


@dataclass
class _Tally:
    """Attempts made so far, read by the caller even when the ping is abandoned."""

    attempts: int = 0


def _send(url: str, body: str, *, budget: Budget, sleep: Callable[[float], None],
          tally: _Tally) -> str | None:
    """None when the ping arrived, else the class of the last failure."""
    deadline = time.monotonic() + budget.seconds
    try:
        for attempt in Retrying(
                retry=retry_if_exception_type(Again),
                stop=stop_after_attempt(budget.attempts) | stop_after_delay(budget.seconds),
                wait=wait_exponential(multiplier=0.5, max=2), sleep=sleep, reraise=True):
            with attempt:
                tally.attempts += 1
                _post(url, body, budget.attempt_timeout(deadline))
    except Failed as exc:
        return exc.what
    except Exception as exc:  # never a traceback, never the text
        return error_class(exc)
    return None


def ping(job: Job, kind: str, signal: Signal, *, body: str,
         budget: Budget = PING_BUDGET,
         sleep: Callable[[float], None] = time.sleep) -> PingResult | None:
    """Send one ping for `job`'s `kind` runs; None when the job has no ping for that kind.
    Returns within `channels.hard_deadline(budget)` whatever the server does; never raises."""
    path = job.notify.ping.file_for(kind)
    if path is None:
        return None
    try:
        base = read_ping_url(path)
    except PingFileError as exc:  # changed since the configuration was validated
        log.warning("%s", exc)  # names the file and what is wrong, never what is in it
        what = "ping file unreadable" if exc.unreadable else "ping file invalid"
        return _failed(job, kind, signal, what, attempts=1)
    tally = _Tally()
    line = body.splitlines()[0] if body else ""
    seconds = hard_deadline(budget)
    outcome = within({f"ping-{job.name}-{kind}": lambda: _send(
        ping_url(base.reveal(), signal), line, budget=budget, sleep=sleep, tally=tally)},
        seconds=seconds)
    if not outcome:  # still waiting for the server: abandoned, and the run goes on
        log.warning("%s: %s ping for %s: no answer within %.0fs; gave up", job.name, signal,
                    kind, seconds)
        return _failed(job, kind, signal, TIMEOUT, attempts=max(tally.attempts, 1))
    (error,) = outcome.values()
    if error is not None:
        return _failed(job, kind, signal, error, attempts=max(tally.attempts, 1))
    return PingResult(job.name, kind, signal, True, None, tally.attempts)


def _failed(job: Job, kind: str, signal: Signal, error: str, *, attempts: int) -> PingResult:
    log.warning("%s: %s ping for %s failed: %s", job.name, signal, kind, error)
    return PingResult(job.name, kind, signal, False, error, attempts)
