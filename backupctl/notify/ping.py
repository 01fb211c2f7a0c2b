"""The dead-man's switch: healthchecks.io-compatible pings per job and kind of run.

`URL/start` when a run starts, `URL` when it succeeds, `URL/fail` when it does not, each a
POST with one line of text. An external checker (healthchecks.io, a self-hosted
healthchecks, Uptime Kuma's push monitor, …) then notices when nothing arrives at all —
the orchestrator being down is the one failure backupctl cannot report itself.

The URL is read from the job's `notify.ping.KIND` file (it holds a token) and never logged.
A ping is bounded (short timeouts, a few attempts) and never raises into the run.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Literal
from urllib.parse import urlsplit

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from backupctl.config.schema import Job
from backupctl.errors import BackupctlError
from backupctl.log import mask
from backupctl.notify.channels import Budget, Permanent, Transient
from backupctl.notify.model import PingResult
from backupctl.secrets import read_secret

log = logging.getLogger(__name__)

Signal = Literal["start", "success", "fail"]
_SUFFIX = {"start": "/start", "success": "", "fail": "/fail"}
PING_BUDGET = Budget(seconds=8.0, attempt=4.0, attempts=3)
PINGED_KINDS = ("backup", "copy", "verify")


def ping_url(base: str, signal: Signal) -> str:
    return base.rstrip("/") + _SUFFIX[signal]


def _post(url: str, body: str, timeout: float) -> None:
    request = urllib.request.Request(  # noqa: S310 (scheme checked: http/https only)
        url, data=body.encode("utf-8"), method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "backupctl"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(1024)
    except urllib.error.HTTPError as exc:
        # 4xx: the check URL is wrong (another attempt cannot help); 5xx: try again.
        error = Permanent if 400 <= exc.code < 500 else Transient
        raise error(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Transient(f"{reason.__class__.__name__}: {reason}") from None


def ping(job: Job, kind: str, signal: Signal, *, body: str,
         budget: Budget = PING_BUDGET,
         sleep: Callable[[float], None] = time.sleep) -> PingResult | None:
    """Send one ping for `job`'s `kind` runs; None when the job has no ping for that kind."""
    path = job.notify.ping.file_for(kind)
    if path is None:
        return None
    attempts = 0
    try:
        try:
            base = read_secret(path, what="ping URL file")
        except BackupctlError as exc:
            raise Permanent(str(exc)) from None
        parts = urlsplit(base.reveal())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Permanent(f"ping URL file {path} does not hold an http(s):// URL")
        url = ping_url(base.reveal(), signal)
        deadline = time.monotonic() + budget.seconds
        for attempt in Retrying(
                retry=retry_if_exception_type(Transient),
                stop=stop_after_attempt(budget.attempts) | stop_after_delay(budget.seconds),
                wait=wait_exponential(multiplier=0.5, max=2), sleep=sleep, reraise=True):
            with attempt:
                attempts += 1
                _post(url, body.splitlines()[0] if body else "", budget.attempt_timeout(deadline))
    except (Transient, Permanent) as exc:
        error = mask(str(exc))
        log.warning("%s: %s ping for %s failed: %s", job.name, signal, kind, error)
        return PingResult(job.name, kind, signal, False, error, max(attempts, 1))
    except Exception as exc:
        error = mask(f"{exc.__class__.__name__}: {exc}")
        log.warning("%s: %s ping for %s failed: %s", job.name, signal, kind, error)
        return PingResult(job.name, kind, signal, False, error, max(attempts, 1))
    return PingResult(job.name, kind, signal, True, None, attempts)
