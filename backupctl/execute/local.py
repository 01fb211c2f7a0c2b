"""LocalRunner: processes on the orchestrator (subprocess, no shell, secrets via pipes)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

from backupctl.execute import (
    Arg,
    Result,
    SecretFile,
    StderrWatch,
    StdoutSink,
    display,
    plain_env,
    raise_if_cancelled,
    running,
    split_env,
    stderr_text,
)

log = logging.getLogger(__name__)


def _secret_pipe(secret_file: SecretFile) -> int:
    """A pipe holding the secret; returns the read end (passed to the child)."""
    read_fd, write_fd = os.pipe()
    data = secret_file.secret.reveal().encode() + b"\n"
    # A password is far below the pipe buffer (64 KiB), so this write never blocks.
    os.write(write_fd, data)
    os.close(write_fd)
    return read_fd


def _kill(proc: subprocess.Popen[bytes], *, group: bool) -> None:
    """Kill the command; with `group` (an admin's shell command, in a process group of its
    own) everything it started too: a hook's `sleep` or `pg_dump` would otherwise keep
    running past a timeout or a cancel, holding the output pipes open."""
    if proc.returncode is not None:  # reaped already: its pid may belong to another now
        return
    try:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
            return
    except (ProcessLookupError, PermissionError):
        pass
    proc.kill()


class _Watched:
    """A command's stderr, kept in `into` and shown to its `watch`; the watch saying so
    kills the command (once)."""

    def __init__(self, into: list[bytes], watch: StderrWatch | None,
                 kill: Callable[[], None]) -> None:
        self.into, self.watch, self.kill = into, watch, kill
        self.stopped = threading.Event()

    def __call__(self, chunk: bytes) -> None:
        self.into.append(chunk)
        if self.watch is not None and not self.stopped.is_set() and self.watch(chunk):
            self.stopped.set()
            self.kill()


def _drain(stream: IO[bytes], sink: StdoutSink | None, into: list[bytes]) -> None:
    for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
        if sink is not None:
            sink(chunk)
        else:
            into.append(chunk)


class LocalRunner:
    host = "local"

    def run(self, argv: Sequence[Arg], *, stdin: bytes | None = None,
            timeout: float | None = None, stdout_sink: StdoutSink | None = None,
            env: dict[str, str] | None = None, group: bool = False,
            stderr_watch: StderrWatch | None = None) -> Result:
        """`group`: run in a process group of its own, killed whole (see `shell`)."""
        fds: list[int] = []
        real: list[str] = []
        words, secret_env = split_env(argv)
        if extra := {**plain_env(argv), **secret_env}:  # a credential is never overridden
            env = {**(env or {}), **extra}
        try:
            for arg in words:
                if isinstance(arg, SecretFile):
                    fds.append(_secret_pipe(arg))
                    real.append(f"/dev/fd/{fds[-1]}")
                else:
                    real.append(arg)
            return self._spawn(argv, real, fds, stdin=stdin, timeout=timeout,
                               stdout_sink=stdout_sink, env=env, group=group,
                               stderr_watch=stderr_watch)
        finally:
            for fd in fds:
                os.close(fd)

    def _spawn(self, argv: Sequence[Arg], real: list[str], fds: list[int], *,
               stdin: bytes | None, timeout: float | None, stdout_sink: StdoutSink | None,
               env: dict[str, str] | None, group: bool,
               stderr_watch: StderrWatch | None = None) -> Result:
        shown = display(argv)
        log.debug("run: %s", shown)
        raise_if_cancelled()
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                real, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=fds,
                env={**os.environ, **env} if env else None,
                process_group=0 if group else None)
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv or env
            return Result(shown, 127, stderr=f"cannot start {real[0]}: {exc}")
        out: list[bytes] = []
        err: list[bytes] = []
        assert proc.stdout is not None and proc.stderr is not None
        watched = _Watched(err, stderr_watch, lambda: _kill(proc, group=group))
        threads = [threading.Thread(target=_drain, args=(proc.stdout, stdout_sink, out)),
                   threading.Thread(target=_drain, args=(proc.stderr, watched, err))]
        if stdin is not None:
            threads.append(threading.Thread(target=_feed, args=(proc.stdin, stdin)))
        for t in threads:
            t.daemon = True
            t.start()
        # A timer kills at the deadline and the wait blocks: Popen.wait(timeout=) polls with
        # sleeps of up to 50 ms, a delay every restic start would pay once more.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _kill(proc, group=group)

        timer = threading.Timer(timeout, expire) if timeout is not None else None
        try:
            if timer is not None:
                timer.daemon = True
                timer.start()
            with running(lambda: _kill(proc, group=group)):
                proc.wait()
        except BaseException:
            _kill(proc, group=group)  # interrupted (Ctrl-C, SIGTERM): never leave restic behind
            proc.wait()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        timed_out = expired.is_set()
        for t in threads:
            t.join()
        raise_if_cancelled()  # killed by `cancel`: not a result to judge
        return Result(shown, proc.returncode, b"".join(out),
                      stderr_text(b"".join(err)),
                      time.monotonic() - started, timed_out, stopped=watched.stopped.is_set())

    def shell(self, command: str, *, timeout: float | None = None) -> Result:
        """An admin's command (hooks, verify.commands): it may start others (a dump piped to
        gzip, a sleep), which a timeout or a cancel must stop with it."""
        return self.run(["sh", "-c", command], timeout=timeout, group=True)

    def close(self) -> None:
        pass


def _feed(stream: IO[bytes] | None, data: bytes) -> None:
    assert stream is not None
    try:
        stream.write(data)
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            stream.close()
