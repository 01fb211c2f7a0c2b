"""Immutability probe: prove, with our own credentials, that a copy refuses delete/overwrite.

A declaration (`kind: immutable`) is never trusted. After each copy the tool writes a probe
object of 64 random bytes next to the repository and tries to delete it and to overwrite it.
Refused is a pass; succeeding is a failure (exit 3). Real repository objects are never
touched, and `locks/` is never used (deleting locks is allowed on purpose).

- REST servers (`rest:http(s)://…`, e.g. `rclone serve restic --append-only`): a sibling
  repository path (`/REPO-backupctl-probe/`, or `/backupctl-probe/` for a root repository),
  plain HTTP: `POST /?create=true` (the slash matters: without it rclone stores a file),
  `POST data/<sha256>`, `DELETE` it, `POST` over it, `GET` it back unchanged. Credentials
  in the URL are used for Basic auth and never shown.
- Local directories: a probe file in `REPO/backupctl-probe/`, sealed like the repository
  (`seal: chattr`), then overwrite and unlink are attempted.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from backupctl.execute import Runner, Secret
from backupctl.state.records import Attempt
from backupctl.status import ExitStatus

PROBE_DIR = "backupctl-probe"
PROBE_SIZE = 64
HTTP_TIMEOUT = 30.0
_REFUSED_HTTP = (401, 403, 405)
_REFUSED_ERRNO = (errno.EPERM, errno.EACCES, errno.EROFS)


# -- HTTP: one small seam so tests can swap the transport --------------------------------

@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    error: str | None = None  # transport error (no HTTP status)


class Http(Protocol):
    def __call__(self, method: str, url: str, *, body: bytes | None,
                 auth: tuple[str, Secret] | None) -> HttpResponse: ...


def urllib_http(method: str, url: str, *, body: bytes | None,
                auth: tuple[str, Secret] | None) -> HttpResponse:
    """Plain urllib (no process); redirects are not followed (a probe must hit the URL)."""
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 (http/https)
    if body is not None:
        request.add_header("Content-Type", "application/octet-stream")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1].reveal()}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with _OPENER.open(request, timeout=HTTP_TIMEOUT) as response:
            return HttpResponse(int(response.status), response.read())
    except urllib.error.HTTPError as exc:
        return HttpResponse(int(exc.code), exc.read() if exc.fp else b"")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return HttpResponse(0, error=f"{reason.__class__.__name__}: {reason}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


# -- results ------------------------------------------------------------------------------

def _attempt(action: str, target: str, outcome: str, detail: str = "") -> Attempt:
    return Attempt(action=action, target=target, outcome=outcome, detail=detail)


@dataclass(frozen=True)
class ProbeResult:
    copy: str
    status: ExitStatus
    ok: bool
    error: str | None = None
    attempts: list[Attempt] = field(default_factory=list)


def _verdict(copy: str, attempts: list[Attempt]) -> ProbeResult:
    """Refused delete and overwrite and an unchanged read-back: pass. Anything else fails."""
    succeeded = [a for a in attempts if a.action in ("delete", "overwrite")
                 and a.outcome == "succeeded"]
    if succeeded:
        first = min(succeeded, key=lambda a: a.action != "delete")  # name deletion first
        verb = "deleting" if first.action == "delete" else "overwriting"
        return ProbeResult(copy, ExitStatus.BAD_DATA, False,
                           f"copy {copy} is NOT immutable: {verb} {first.target} succeeded "
                           "with the credentials backupctl holds", attempts)
    bad_read = [a for a in attempts if a.action == "read-back" and a.outcome != "succeeded"]
    if bad_read and bad_read[0].outcome == "changed":
        return ProbeResult(copy, ExitStatus.BAD_DATA, False,
                           f"copy {copy} is NOT immutable: the probe object "
                           f"{bad_read[0].target} changed ({bad_read[0].detail})", attempts)
    unproven = [a for a in attempts if a.outcome == "error" or
                (a.action in ("delete", "overwrite") and a.outcome != "refused")]
    if unproven or bad_read or len(attempts) < 3:
        what = unproven[0] if unproven else (bad_read[0] if bad_read else None)
        reason = f"{what.action} {what.target}: {what.detail}" if what else "incomplete"
        return ProbeResult(copy, ExitStatus.FAILED, False,
                           f"copy {copy}: immutability could not be proven ({reason})",
                           attempts)
    return ProbeResult(copy, ExitStatus.OK, True, None, attempts)


# -- REST servers -------------------------------------------------------------------------

@dataclass(frozen=True)
class RestTarget:
    base: str  # scheme://host:port (no credentials)
    path: str  # probe repository path, e.g. /emr-db-backupctl-probe
    auth: tuple[str, Secret] | None

    def url(self, suffix: str = "") -> str:
        return f"{self.base}{self.path}{suffix}"


def rest_target(url: str) -> RestTarget:
    """The probe location for `rest:http(s)://[user:pass@]host[:port]/path/`."""
    parts = urllib.parse.urlsplit(url.removeprefix("rest:"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not a rest:http(s):// URL")
    auth = None
    if parts.username is not None:
        auth = (urllib.parse.unquote(parts.username),
                Secret(urllib.parse.unquote(parts.password or "")))
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    base = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    repo = parts.path.strip("/")
    path = f"/{repo}-{PROBE_DIR}" if repo else f"/{PROBE_DIR}"
    return RestTarget(base, path, auth)


def probe_rest(copy: str, url: str, *, http: Http = urllib_http,
               random: Callable[[int], bytes] = os.urandom) -> ProbeResult:
    try:
        target = rest_target(url)
    except ValueError as exc:
        return ProbeResult(copy, ExitStatus.FAILED, False, f"copy {copy}: cannot probe: {exc}")
    body = random(PROBE_SIZE)
    name = hashlib.sha256(body).hexdigest()
    obj = target.url(f"/data/{name}")
    attempts: list[Attempt] = []

    def call(action: str, method: str, url_: str, data: bytes | None) -> HttpResponse:
        response = http(method, url_, body=data, auth=target.auth)
        detail = f"{method}: " + (response.error or f"HTTP {response.status}")
        if response.error is not None:
            outcome = "error"
        elif 200 <= response.status < 300:
            outcome = "succeeded"
        elif response.status in _REFUSED_HTTP:
            outcome = "refused"
        else:
            outcome = "error"
        attempts.append(_attempt(action, url_, outcome, detail))
        return response

    call("write", "POST", target.url("/?create=true"), b"")
    if attempts[-1].outcome == "succeeded":
        call("write", "POST", obj, body)
    if attempts[-1].outcome != "succeeded":
        last = attempts.pop()
        attempts.append(_attempt(last.action, last.target, "error",
                                f"{last.detail}: the probe object could not be written"))
        return _verdict(copy, attempts)
    call("delete", "DELETE", obj, None)
    call("overwrite", "POST", obj, random(PROBE_SIZE))
    back = http("GET", obj, body=None, auth=target.auth)
    if back.error is not None or back.status != 200:
        attempts.append(_attempt("read-back", obj, "error",
                                "GET: " + (back.error or f"HTTP {back.status}")))
    elif back.body != body:
        attempts.append(_attempt("read-back", obj, "changed",
                                "content differs from what was written"))
    else:
        attempts.append(_attempt("read-back", obj, "succeeded", "GET: content unchanged"))
    return _verdict(copy, attempts)


# -- local directories --------------------------------------------------------------------

def seal(runner: Runner, repository: Path, *, timeout: float) -> str | None:
    """`chattr +i` every file of a local repository except `locks/`; an error or None."""
    result = runner.run(["find", str(repository), "-type", "f", "!", "-path",
                         f"{repository}/locks/*", "-exec", "chattr", "+i", "{}", "+"],
                        timeout=timeout)
    return None if result.ok else f"sealing {repository} failed {result.describe()}"


def probe_directory(copy: str, repository: Path, *, runner: Runner, sealed: bool,
                    timeout: float = 600,
                    random: Callable[[int], bytes] = os.urandom) -> ProbeResult:
    """Write a probe file in the repository, seal it like the copy, then attack it."""
    directory = repository / PROBE_DIR
    body = random(PROBE_SIZE)
    path = directory / hashlib.sha256(body).hexdigest()
    attempts: list[Attempt] = []
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        path.write_bytes(body)
        attempts.append(_attempt("write", str(path), "succeeded", "probe file written"))
    except OSError as exc:
        attempts.append(_attempt("write", str(path), "error", f"cannot write: {exc.strerror}"))
        return _verdict(copy, attempts)
    if sealed:
        result = runner.run(["chattr", "+i", str(path)], timeout=timeout)
        if not result.ok:
            attempts.append(_attempt("write", str(path), "error",
                                    f"chattr +i failed {result.describe()}"))
            return _verdict(copy, attempts)
    attempts.append(_try(path, "overwrite", lambda: _overwrite(path, random(PROBE_SIZE))))
    attempts.append(_try(path, "delete", path.unlink))
    try:
        same = path.read_bytes() == body
        attempts.append(_attempt("read-back", str(path), "succeeded" if same else "changed",
                                "content unchanged" if same else "content differs"))
    except OSError as exc:
        attempts.append(_attempt("read-back", str(path), "error", f"{exc.strerror}"))
    return _verdict(copy, attempts)


def _overwrite(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _try(path: Path, action: str, attack: Callable[[], object]) -> Attempt:
    try:
        attack()
    except OSError as exc:
        if exc.errno in _REFUSED_ERRNO:
            return _attempt(action, str(path), "refused", f"{errno.errorcode.get(exc.errno or 0)}"
                           f": {exc.strerror}")
        return _attempt(action, str(path), "error", f"{exc.strerror}")
    return _attempt(action, str(path), "succeeded", f"{action} was allowed")


def is_local_path(url: str) -> bool:
    return url.startswith("/") or url.startswith("local:")


def local_path(url: str) -> Path:
    return Path(url.removeprefix("local:"))


def probe(copy: str, url: str, *, runner: Runner, sealed: bool,
          http: Http = urllib_http) -> ProbeResult:
    """Probe one immutable copy by its URL kind; an unprobeable URL is never a pass."""
    if url.startswith("rest:"):
        return probe_rest(copy, url, http=http)
    if is_local_path(url):
        return probe_directory(copy, local_path(url), runner=runner, sealed=sealed)
    scheme = url.split(":", 1)[0]
    return ProbeResult(copy, ExitStatus.FAILED, False,
                       f"copy {copy}: backupctl cannot probe {scheme}: repositories; "
                       "immutability is not proven (use a rest: server or a local directory)")

