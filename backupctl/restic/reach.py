"""A repository server that accepts connections and never answers ends a restic run in
bounded time, on every restic version (issue 30).

What each version does with such a server (a hung NAS, a stopped rest-server behind a live
proxy; measured here against a loopback socket that accepts and never answers):
- restic 0.14–0.17.0: waits without end (no request of the REST or S3 backend has a
  timeout): only `command_timeout` would end it, hours later.
- restic 0.17.1+: gives up on a request without progress after `--stuck-request-timeout`
  (default 5 minutes) and retries it, which watch.RetryWatch stops as unreachable.

`Bounded` wraps a Runner and, for each restic command whose repository (or `--from-repo`) is
an HTTP one (`rest:`, `s3:`): passes `--stuck-request-timeout STUCK_AFTER` to 0.17.1+, and
with an older restic first asks the server for any answer within ANSWER_WITHIN seconds, from
where restic will run (answer.py: in this process on the orchestrator, `python3 -I -c` on a
job's host). A silent server ends the command there as `stopped`, which restic.run reads as
"repository unreachable" (exit 1), as for a dead server. A server that stops answering in
the middle of a run is still bounded only by `command_timeout` on restic < 0.17.1
(docs/install.md). Local and sftp repositories are left alone: the kernel and ssh bound
those.
"""

from __future__ import annotations

import itertools
import time
import urllib.parse
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

from backupctl.execute import (
    Arg,
    Result,
    Runner,
    SecretFile,
    StderrWatch,
    StdoutSink,
    Wrapping,
    display,
)
from backupctl.restic import answer
from backupctl.restic.commands import RESTIC
from backupctl.restic.parse import version as parse_version
from backupctl.restic.versions import at_least

STUCK_AFTER = "30s"  # restic 0.17.1+: a request without progress this long is retried
STUCK_OPTION_SINCE = (0, 17, 1)  # restic's --stuck-request-timeout
ANSWER_WITHIN = 20.0  # older restic: seconds the repository's server has to answer first
REMEMBER = 60.0  # an answer stands for this long (a verify runs several restic commands)
_REPO_OPTIONS = ("-r", "--repo", "--from-repo")
_REPO_FILES = ("--repository-file", "--from-repository-file")

Endpoint = tuple[str, int, bool]  # host, port, TLS


def endpoint(url: str) -> Endpoint | None:
    """Where an HTTP repository's server listens (`rest:http(s)://…`, `s3:…`), or None."""
    if url.startswith("rest:"):
        rest = url[len("rest:"):]
    elif url.startswith("s3:"):
        rest = url[len("s3:"):]
        rest = rest if rest.startswith(("http://", "https://")) else "https://" + rest
    else:
        return None
    try:
        parts = urllib.parse.urlsplit(rest)
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname, port, tls


def repositories(argv: Sequence[Arg]) -> list[str]:
    """The repository URLs a restic argv names (`--repo`, a `--repository-file` pipe, and
    the same for `--from-`)."""
    found = []
    for option, value in itertools.pairwise(argv):
        if option in _REPO_OPTIONS and isinstance(value, str):
            found.append(value)
        elif option in _REPO_FILES and isinstance(value, SecretFile):
            found.append(value.secret.reveal())
    return found


@cache
def answer_source() -> str:
    return (Path(__file__).parent / "answer.py").read_text(encoding="utf-8")


def ask(runner: Runner, where: Endpoint, *, within: float) -> int:
    """answer.ANSWERED / SILENT / NOT_CONNECTED, asked from the runner's host."""
    host, port, tls = where
    if runner.host == "local":  # the orchestrator: no process needed
        return answer.ask(host, port, tls, within)
    done = runner.run(["python3", "-I", "-c", answer_source(), host, str(port),
                       "1" if tls else "0", str(within)], timeout=2 * within + 30)
    # no python3 there (127), a timeout, anything else: restic will say what it finds
    return done.returncode if done.returncode in (answer.ANSWERED, answer.SILENT) and \
        not done.timed_out else answer.NOT_CONNECTED


class Bounded(Wrapping):
    """A Runner that bounds restic's wait for a silent repository server (module text).

    The restic version is the one `restic version` answered through this runner (the host's
    `versions.require` asks first), else `version()` (the orchestrator's cached one), asked
    only when a command names an HTTP repository."""

    def __init__(self, runner: Runner, *, version: Callable[[], str] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 within: float = ANSWER_WITHIN) -> None:
        super().__init__(runner)
        self.within = within
        self._ask_version = version
        self._version: str | None = None
        self._answered: dict[Endpoint, float] = {}
        self._clock = clock

    def run(self, argv: Sequence[Arg], *, stdin: bytes | None = None,
            timeout: float | None = None, stdout_sink: StdoutSink | None = None,
            env: dict[str, str] | None = None,
            stderr_watch: StderrWatch | None = None) -> Result:
        if argv and argv[0] == RESTIC and len(argv) > 1:
            if list(argv[1:]) == ["version"]:
                result = self.runner.run(argv, stdin=stdin, timeout=timeout, env=env)
                if result.ok:
                    self._version = parse_version(result.stdout.decode(errors="replace"))
                return result
            found = [e for e in map(endpoint, repositories(argv)) if e is not None]
            if found and self.stuck_option():
                argv = [argv[0], "--stuck-request-timeout", STUCK_AFTER, *argv[1:]]
            elif silent := next((e for e in found if self.silent(e)), None):
                return self._silent_result(argv, silent)
        return self.runner.run(argv, stdin=stdin, timeout=timeout, stdout_sink=stdout_sink,
                               env=env, stderr_watch=stderr_watch)

    def know(self, version: str) -> None:
        """restic's version here, learnt elsewhere (the orchestrator's cached one)."""
        self._version = version

    def version(self) -> str:
        if self._version is None:
            if self._ask_version is not None:
                self._version = self._ask_version()
            else:
                self.run([RESTIC, "version"], timeout=30)
                self._version = self._version or "unknown"
        return self._version

    def stuck_option(self) -> bool:
        """restic here takes --stuck-request-timeout (0.17.1 and later)."""
        return at_least(self.version(), STUCK_OPTION_SINCE)

    def silent(self, where: Endpoint) -> bool:
        """The server at `where` answered nothing within `within` seconds (asked at most
        once per REMEMBER seconds while it answers)."""
        now = self._clock()
        if now - self._answered.get(where, -REMEMBER) < REMEMBER:
            return False
        found = ask(self.runner, where, within=self.within)
        if found == answer.SILENT:
            return True
        if found == answer.ANSWERED:
            self._answered[where] = now
        return False

    def silent_text(self, where: Endpoint) -> str:
        host, port, _ = where
        return (f"the repository's server {host}:{port} accepted no request within "
                f"{self.within:.0f}s (asked from {self.host}); restic {self.version()} would "
                "wait for it without end, so it was not started")

    def _silent_result(self, argv: Sequence[Arg], where: Endpoint) -> Result:
        return Result(display(argv), 1, stderr=self.silent_text(where), host=self.host,
                      stopped=True)



def options(runner: object) -> list[str]:
    """restic's options for a helper that starts restic itself on the runner's host (the
    database dump): the stuck-request timeout where that restic takes it."""
    while runner is not None:
        if isinstance(runner, Bounded):
            return ["--stuck-request-timeout", STUCK_AFTER] if runner.stuck_option() else []
        runner = getattr(runner, "runner", None)
    return []


def bounded(runner: object) -> Bounded | None:
    """The Bounded wrapper inside `runner` (through Counting, Programs), if any."""
    while runner is not None:
        if isinstance(runner, Bounded):
            return runner
        runner = getattr(runner, "runner", None)
    return None


def silent_before(runner: object, url: str) -> str | None:
    """Why a helper that starts restic itself on the runner's host (the database dump) must
    not start: its restic is older than 0.17.1 and the repository's server answers nothing
    (the message); None otherwise."""
    guard = bounded(runner)
    where = endpoint(url)
    if guard is None or where is None or guard.stuck_option() or not guard.silent(where):
        return None
    return f"repository unreachable: {guard.silent_text(where)}"
