"""The one door to the outside: every process and SSH command goes through a Runner.

Actions build argv lists; a Runner quotes them (SSH), feeds secrets through file
descriptors or stdin (never argv or environment), logs with secrets masked, enforces
timeouts, and returns a Result.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


class Secret:
    """A secret string that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        from backupctl.log import register_secret

        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class SecretFile:
    """An argv placeholder: a path from which the process can read the secret once.

    Local runners substitute `/dev/fd/N` of a pipe; the SSH runner substitutes `/dev/stdin`
    and writes the secret to the channel (so at most one per remote command).
    """

    secret: Secret
    label: str = "secret"  # what a reader of the command line may see instead

    def __str__(self) -> str:
        return f"<{self.label}>"


Arg = str | SecretFile
StdoutSink = Callable[[bytes], None]


def display(argv: Sequence[Arg]) -> str:
    """The command as a human reads it, secrets masked."""
    return shlex.join(str(a) for a in argv)


@dataclass(frozen=True)
class Result:
    argv: str  # display form, secrets masked
    returncode: int
    stdout: bytes = b""
    stderr: str = ""  # the end of stderr (at most STDERR_KEEP bytes), decoded
    duration: float = 0.0
    timed_out: bool = False
    host: str = "local"

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        """A one-paragraph account of a failed command for error messages."""
        what = "timed out" if self.timed_out else f"exited {self.returncode}"
        last = tail(self.stderr.strip())
        return f"on {self.host}: `{self.argv}` {what}{': ' + last if last else ''}"


STDERR_TAIL_LINES = 30  # lines of stderr an error message shows
# Bytes of stderr a Result keeps: restic writes one JSON error per unreadable file there, and
# every one of them must reach the run's result, not only the last lines.
STDERR_KEEP = 1 << 20


def tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def stderr_text(data: bytes) -> str:
    """The end of a command's stderr (at most STDERR_KEEP bytes), decoded."""
    return data[-STDERR_KEEP:].decode("utf-8", "replace")


class Runner(Protocol):
    """Runs commands on one host (the orchestrator itself or a server over SSH)."""

    host: str

    def run(self, argv: Sequence[Arg], *, stdin: bytes | None = None,
            timeout: float | None = None, stdout_sink: StdoutSink | None = None,
            env: dict[str, str] | None = None) -> Result:
        """Run argv (never through a shell unless argv says so) and wait for it.

        stdout_sink, when given, receives stdout in chunks instead of Result.stdout.
        env adds non-secret variables (local runs only; SSH refuses it).
        """
        ...

    def shell(self, command: str, *, timeout: float | None = None) -> Result:
        """Run an admin-written shell command (job `before`/`after`) with `sh -c`."""
        ...

    def close(self) -> None: ...


class Counting:
    """A Runner that counts the programs it starts, by name (a restic start costs ~0.7 s)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.host = runner.host
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def run(self, argv: Sequence[Arg], *, stdin: bytes | None = None,
            timeout: float | None = None, stdout_sink: StdoutSink | None = None,
            env: dict[str, str] | None = None) -> Result:
        name = str(argv[0]).rsplit("/", 1)[-1] if argv else ""
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1
        return self.runner.run(argv, stdin=stdin, timeout=timeout, stdout_sink=stdout_sink,
                               env=env)

    def shell(self, command: str, *, timeout: float | None = None) -> Result:
        return self.run(["sh", "-c", command], timeout=timeout)

    def close(self) -> None:
        self.runner.close()


# -- stopping everything (SIGTERM/SIGINT) --------------------------------------------------

class Cancelled(BaseException):
    """The process was told to stop: a command was killed, or was not started.

    A BaseException, like KeyboardInterrupt: no `except Exception` turns it into a result;
    the run that was going on is recorded interrupted on the way out."""


_CANCELLED = threading.Event()
_REASON = ["stopped by a signal"]  # what Cancelled says (the first cancel's reason)
_STOPPERS: dict[int, Callable[[], None]] = {}
_STOPPERS_LOCK = threading.RLock()  # cancel() may run in a signal handler


def cancel(reason: str | None = None) -> None:
    """Kill every running command of this process and refuse to start new ones.

    `reason` (default: a signal) is what the runs stopped this way say: a lost job lease
    (state/leases.py) stops the process's runs too."""
    if reason is not None and not _CANCELLED.is_set():
        _REASON[0] = reason
    _CANCELLED.set()
    with _STOPPERS_LOCK:
        stoppers = list(_STOPPERS.values())
    for stop in stoppers:
        stop()


def cancelled() -> bool:
    return _CANCELLED.is_set()


_CLEANUP = threading.local()


def raise_if_cancelled() -> None:
    if _CANCELLED.is_set() and not getattr(_CLEANUP, "active", False):
        raise Cancelled(_REASON[0])


class cleaning_up:
    """Commands that clean up after a stop (stop a throwaway server, unlock) still run."""

    def __enter__(self) -> None:
        _CLEANUP.active = True

    def __exit__(self, *_exc: object) -> None:
        _CLEANUP.active = False


class running:
    """Register how to stop a command while it runs (see `cancel`)."""

    def __init__(self, stop: Callable[[], None]) -> None:
        self.stop = stop

    def __enter__(self) -> None:
        raise_if_cancelled()
        with _STOPPERS_LOCK:
            _STOPPERS[id(self)] = self.stop

    def __exit__(self, *_exc: object) -> None:
        with _STOPPERS_LOCK:
            _STOPPERS.pop(id(self), None)
