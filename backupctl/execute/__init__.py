"""The one door to the outside: every process and SSH command goes through a Runner.

Actions build argv lists; a Runner quotes them (SSH), feeds secrets through file
descriptors or stdin (never argv or environment), logs with secrets masked, enforces
timeouts, and returns a Result.
"""

from __future__ import annotations

import contextlib
import contextvars
import shlex
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


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


@dataclass(frozen=True)
class SecretEnv:
    """An argv placeholder for secrets a program reads only from its environment (restic's
    S3 credentials: it has no file option for them). Never part of the command line: local
    runs put the values in the child's environment (readable by its own user and root
    only), the SSH runner refuses it (a remote environment is set on a command line)."""

    values: tuple[tuple[str, Secret], ...]
    label: str = "credentials"

    def __str__(self) -> str:
        return ""


@dataclass(frozen=True)
class Env:
    """An argv placeholder for plain variables the program needs (`TZ=UTC0`): local runs put
    them in the child's environment, the SSH runner starts the command through `env`."""

    values: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return " ".join(f"{name}={value}" for name, value in self.values)


Arg = str | SecretFile | SecretEnv | Env


def split_env(argv: Sequence[Arg]) -> tuple[list[str | SecretFile], dict[str, str]]:
    """argv without its SecretEnv and Env placeholders, and the secret variables."""
    words: list[str | SecretFile] = []
    env: dict[str, str] = {}
    for arg in argv:
        if isinstance(arg, SecretEnv):
            env.update((name, secret.reveal()) for name, secret in arg.values)
        elif not isinstance(arg, Env):
            words.append(arg)
    return words, env


def plain_env(argv: Sequence[Arg]) -> dict[str, str]:
    """The plain variables of argv's Env placeholders."""
    return {name: value for arg in argv if isinstance(arg, Env) for name, value in arg.values}


def env_words(argv: Sequence[Arg]) -> list[str]:
    """`env NAME=VALUE…` setting argv's plain variables on a command line (any login shell
    runs it), or nothing."""
    plain = plain_env(argv)
    return ["env", *(f"{name}={value}" for name, value in plain.items())] if plain else []
StdoutSink = Callable[[bytes], None]
# Told each chunk of a command's stderr as it arrives; True stops the command at once (it is
# killed as at a timeout, and its Result says `stopped`). restic 0.17+ announces on stderr
# that it keeps retrying a repository it cannot reach, for up to 15 minutes.
StderrWatch = Callable[[bytes], bool]


def display(argv: Sequence[Arg]) -> str:
    """The command as a human reads it, secrets masked."""
    shown = [str(a) for a in argv if not isinstance(a, SecretEnv | Env)]
    return " ".join([*(str(a) for a in argv if isinstance(a, Env)), shlex.join(shown)])


@dataclass(frozen=True)
class Result:
    argv: str  # display form, secrets masked
    returncode: int
    stdout: bytes = b""
    stderr: str = ""  # the end of stderr (at most STDERR_KEEP bytes), decoded
    duration: float = 0.0
    timed_out: bool = False
    host: str = "local"
    stopped: bool = False  # its stderr_watch stopped it

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.stopped

    def describe(self) -> str:
        """A one-paragraph account of a failed command for error messages."""
        what = ("timed out" if self.timed_out else "was stopped" if self.stopped
                else f"exited {self.returncode}")
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
            env: dict[str, str] | None = None,
            stderr_watch: StderrWatch | None = None) -> Result:
        """Run argv (never through a shell unless argv says so) and wait for it.

        stdout_sink, when given, receives stdout in chunks instead of Result.stdout.
        env adds non-secret variables (local runs only; SSH refuses it).
        stderr_watch sees stderr as it comes and may stop the command (StderrWatch).
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
            env: dict[str, str] | None = None,
            stderr_watch: StderrWatch | None = None) -> Result:
        name = str(argv[0]).rsplit("/", 1)[-1] if argv else ""
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1
        return self.runner.run(argv, stdin=stdin, timeout=timeout, stdout_sink=stdout_sink,
                               env=env, stderr_watch=stderr_watch)

    def shell(self, command: str, *, timeout: float | None = None) -> Result:
        return self.run(["sh", "-c", command], timeout=timeout)

    def close(self) -> None:
        self.runner.close()


class Wrapping:
    """Base of a Runner that wraps another: what it does not change (`shell`, `close`, and
    anything else, e.g. `forward_remote` of an SSH runner) is the wrapped runner's."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.host = runner.host

    def shell(self, command: str, *, timeout: float | None = None) -> Result:
        return self.runner.shell(command, timeout=timeout)

    def close(self) -> None:
        self.runner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runner, name)


class Programs(Wrapping):
    """A Runner that starts the configured binary for a program's name: `restic` becomes
    `host.restic` on a job's host, the global `restic` on the orchestrator."""

    def __init__(self, runner: Runner, paths: Mapping[str, str]) -> None:
        super().__init__(runner)
        self.paths = dict(paths)

    def run(self, argv: Sequence[Arg], *, stdin: bytes | None = None,
            timeout: float | None = None, stdout_sink: StdoutSink | None = None,
            env: dict[str, str] | None = None,
            stderr_watch: StderrWatch | None = None) -> Result:
        if argv and isinstance(argv[0], str) and argv[0] in self.paths:
            argv = [self.paths[argv[0]], *argv[1:]]
        return self.runner.run(argv, stdin=stdin, timeout=timeout, stdout_sink=stdout_sink,
                               env=env, stderr_watch=stderr_watch)


def program(runner: object, name: str) -> str:
    """What `runner` starts for `name` (through any wrappers: Counting, Programs): the path
    a program inside a helper must use too."""
    while runner is not None:
        if isinstance(runner, Programs):
            return runner.paths.get(name, name)
        runner = getattr(runner, "runner", None)
    return name


# -- stopping commands: the whole process (SIGTERM/SIGINT) or one job (its lost lease) ------

class Cancelled(BaseException):
    """The process or the job was told to stop: a command was killed, or was not started.

    A BaseException, like KeyboardInterrupt: no `except Exception` turns it into a result;
    the run that was going on is recorded interrupted on the way out."""


class Scope:
    """Commands that stop together. The process is one scope (a signal stops everything);
    each job runs in a scope of its own inside it (`job_scope`), so a lost job lease stops
    that job's commands and no other job's."""

    def __init__(self, parent: Scope | None = None, *,
                 reason: str = "stopped by a signal") -> None:
        self.parent = parent
        self.reason = reason  # what Cancelled says (the first cancel's reason)
        self._event = threading.Event()
        self._stoppers: dict[int, Callable[[], None]] = {}
        self._lock = threading.RLock()  # cancel() may run in a signal handler

    def cancel(self, reason: str | None = None) -> None:
        """Kill every running command of this scope (and those inside it), start none."""
        if reason is not None and not self._event.is_set():
            self.reason = reason
        self._event.set()
        with self._lock:
            stoppers = list(self._stoppers.values())
        for stop in stoppers:
            stop()

    def stopped(self) -> Scope | None:
        """This scope or the nearest enclosing one that was cancelled, if any."""
        scope: Scope | None = self
        while scope is not None and not scope._event.is_set():
            scope = scope.parent
        return scope

    def _chain(self) -> list[Scope]:
        chain: list[Scope] = []
        scope: Scope | None = self
        while scope is not None:
            chain.append(scope)
            scope = scope.parent
        return chain

    def add(self, key: int, stop: Callable[[], None]) -> None:
        for scope in self._chain():  # a cancel of any enclosing scope reaches it
            with scope._lock:
                scope._stoppers[key] = stop

    def remove(self, key: int) -> None:
        for scope in self._chain():
            with scope._lock:
                scope._stoppers.pop(key, None)


_PROCESS = Scope()
_CURRENT: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("scope", default=None)


def current() -> Scope:
    """The scope commands started here belong to: the job's, else the process's."""
    return _CURRENT.get() or _PROCESS


def cancel(reason: str | None = None) -> None:
    """Kill every running command of this process and refuse to start new ones (signals)."""
    _PROCESS.cancel(reason)


def cancelled() -> bool:
    """Was the whole process told to stop?"""
    return _PROCESS.stopped() is not None


@contextlib.contextmanager
def job_scope() -> Iterator[Scope]:
    """Run the body's commands in a scope of their own (one job), inside the current one."""
    scope = Scope(current())
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)


def adopt(scope: Scope) -> None:
    """Start this thread's commands in `scope`: a job's worker pool passes it as its
    `initializer`, so what runs beside the restore stops with the job."""
    _CURRENT.set(scope)


_CLEANUP = threading.local()


def raise_if_cancelled() -> None:
    stopped = current().stopped()
    if stopped is not None and not getattr(_CLEANUP, "active", False):
        raise Cancelled(stopped.reason)


class cleaning_up:
    """Commands that clean up after a stop (stop a throwaway server, unlock) still run."""

    def __enter__(self) -> None:
        _CLEANUP.active = True

    def __exit__(self, *_exc: object) -> None:
        _CLEANUP.active = False


class running:
    """Register how to stop a command while it runs (see `Scope.cancel`)."""

    def __init__(self, stop: Callable[[], None]) -> None:
        self.stop = stop
        self.scope = current()

    def __enter__(self) -> None:
        raise_if_cancelled()
        self.scope.add(id(self), self.stop)

    def __exit__(self, *_exc: object) -> None:
        self.scope.remove(id(self))
