"""FakeRunner: a Runner for unit tests that records every argv and returns scripted results.

It starts no process. Tests script results with `on(...)` (the newest matching rule wins)
and inspect `calls` afterwards, e.g. to prove that no password ever appears in argv. A
command without a matching rule raises `UnexpectedCommand` unless a `default` is given,
so a test never passes because an unplanned command quietly "succeeded".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from backupctl.execute import (
    Arg,
    Env,
    Result,
    Secret,
    SecretEnv,
    SecretFile,
    StderrWatch,
    StdoutSink,
    display,
)

__all__ = ["Call", "FakeRunner", "Rule", "UnexpectedCommand"]


class UnexpectedCommand(AssertionError):
    """A command was run for which the test scripted no result."""


@dataclass(frozen=True)
class Call:
    """One recorded command, as the action built it (SecretFile placeholders kept)."""

    argv: tuple[Arg, ...]
    stdin: bytes | None
    timeout: float | None
    env: dict[str, str] | None

    @property
    def words(self) -> list[str]:
        """argv as strings; a SecretFile shows as `<secret>`, never its value."""
        return [str(a) for a in self.argv]

    @property
    def secrets(self) -> list[Secret]:
        return [a.secret for a in self.argv if isinstance(a, SecretFile)]

    @property
    def text(self) -> str:
        return display(self.argv)

    def has(self, *words: str) -> bool:
        """Every one of `words` is an argv element (in any order)."""
        mine = self.words
        return all(w in mine for w in words)


Responder = Callable[[Call], Result]


@dataclass
class Rule:
    match: Callable[[Call], bool]
    respond: Responder
    times: int | None = None  # None: unlimited
    used: int = 0


@dataclass
class FakeRunner:
    """Records commands; answers them from rules set with `on()`."""

    host: str = "fake"
    default: Result | None = None
    calls: list[Call] = field(default_factory=list)
    closed: bool = False
    _rules: list[Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, *words: str, returncode: int = 0, stdout: bytes = b"", stderr: str = "",
           timed_out: bool = False, times: int | None = None,
           respond: Responder | None = None) -> None:
        """Answer commands whose argv contains every one of `words`.

        `respond` computes the result from the call instead (e.g. to fail the 2nd time).
        `times` limits how often the rule answers; later rules take precedence.
        """

        def scripted(call: Call) -> Result:
            return Result(call.text, returncode, stdout, stderr, 0.0, timed_out, self.host)

        self._rules.append(Rule(match=lambda call: call.has(*words),
                                respond=respond or scripted, times=times))

    def run(self, argv: Sequence[Arg], *, stdin: bytes | None = None,
            timeout: float | None = None, stdout_sink: StdoutSink | None = None,
            env: dict[str, str] | None = None,
            stderr_watch: StderrWatch | None = None) -> Result:
        for arg in argv:
            if not isinstance(arg, str | SecretFile | SecretEnv | Env):
                raise TypeError(f"argv element {arg!r} is neither str nor SecretFile")
        call = Call(tuple(argv), stdin, timeout, dict(env) if env else None)
        with self._lock:
            self.calls.append(call)
            rule = next((r for r in reversed(self._rules)
                         if (r.times is None or r.used < r.times) and r.match(call)), None)
            if rule is not None:
                rule.used += 1
        if rule is not None:
            result = rule.respond(call)
        elif self.default is not None:
            result = Result(call.text, self.default.returncode, self.default.stdout,
                            self.default.stderr, 0.0, self.default.timed_out, self.host)
        else:
            raise UnexpectedCommand(f"{self.host}: no scripted result for `{call.text}`")
        if stderr_watch is not None and result.stderr and stderr_watch(result.stderr.encode()):
            # stopped as a real runner would: killed (SIGKILL), whatever it would have said
            result = Result(result.argv, -9, result.stdout, result.stderr, result.duration,
                            result.timed_out, result.host, stopped=True)
        if stdout_sink is not None and result.stdout:
            stdout_sink(result.stdout)
            result = Result(result.argv, result.returncode, b"", result.stderr,
                            result.duration, result.timed_out, result.host, result.stopped)
        return result

    def shell(self, command: str, *, timeout: float | None = None) -> Result:
        return self.run(["sh", "-c", command], timeout=timeout)

    def close(self) -> None:
        self.closed = True

    # -- inspection ---------------------------------------------------------------------

    def commands(self, *words: str) -> list[Call]:
        """The recorded calls whose argv contains every one of `words`."""
        return [c for c in self.calls if c.has(*words)]

    def leaks(self, value: str) -> list[str]:
        """Every recorded argv element, env value or stdin that contains `value`."""
        found: list[str] = []
        for call in self.calls:
            found += [w for w in call.words if value in w]
            found += [f"env {k}" for k, v in (call.env or {}).items() if value in v]
            if call.stdin is not None and value.encode() in call.stdin:
                found.append(f"stdin of `{call.text}`")
        return found
