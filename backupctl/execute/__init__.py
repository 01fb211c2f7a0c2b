"""The one door to the outside: every process and SSH command goes through a Runner.

Actions build argv lists; a Runner quotes them (SSH), feeds secrets through file
descriptors or stdin (never argv or environment), logs with secrets masked, enforces
timeouts, and returns a Result.
"""

from __future__ import annotations

import shlex
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

    def __str__(self) -> str:
        return "<secret>"


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
