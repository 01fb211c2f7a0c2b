"""Which repositories backupctl can serve to a host over the job's SSH connection (SPEC §15).

A job may omit `repository.url` when its repository lies on the orchestrator: `local_url`
is then a directory there (`/srv/restic/emr-db`, or restic's `local:/srv/…`) or a REST
server on the orchestrator's own loopback (`rest:http://127.0.0.1:8000/emr-db/`), which
`actions.tunnel` makes reachable from the host's loopback for the run. Anything else (an
`s3:` bucket, `sftp:`, a REST server elsewhere) the host can reach on its own: give `url`.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_NAMES = ("127.0.0.1", "localhost")  # what the forward connects to: 127.0.0.1


@dataclass(frozen=True)
class LoopbackRest:
    """`rest:http://[USER:PASS@]LOOPBACK[:PORT]/PATH` split into what a forward needs."""

    port: int
    userinfo: str  # `user:pass@` as written (with its `@`), or ""
    path: str  # `/PATH` (at least `/`)

    def through(self, port: int | str) -> str:
        """The same repository reached on 127.0.0.1:`port` (the host's end of a forward)."""
        return f"rest:http://{self.userinfo}127.0.0.1:{port}{self.path}"


def local_directory(url: str) -> Path | None:
    """The orchestrator's directory a restic URL names (`/DIR` or `local:/DIR`), or None."""
    path = url.removeprefix("local:")
    return Path(path) if path.startswith("/") else None


def loopback_rest(url: str) -> LoopbackRest | None:
    """A plain-HTTP REST server on the orchestrator's loopback, or None. (TLS is left out:
    its certificate could not name the host's end of the forward.)"""
    if not url.startswith("rest:http://"):
        return None
    try:
        parts = urllib.parse.urlsplit(url.removeprefix("rest:"))
        port = parts.port or 80
    except ValueError:
        return None
    if parts.hostname not in LOOPBACK_NAMES:
        return None
    userinfo = parts.netloc.rpartition("@")[0]
    return LoopbackRest(port=port, userinfo=f"{userinfo}@" if userinfo else "",
                        path=parts.path or "/")


def servable_problem(url: str) -> str | None:
    """Why `local_url` cannot stand alone (served over SSH), or None when it can."""
    if local_directory(url) is not None or loopback_rest(url) is not None:
        return None
    return ("without repository.url, repository.local_url must be a directory on the "
            "orchestrator (/DIR) or a rest:http:// server on its loopback (127.0.0.1), which "
            f"backupctl serves to the host over SSH; {url.split(':', 1)[0]!r} URLs are "
            "reached by the host itself: give repository.url as the host reaches it")
