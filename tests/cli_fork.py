"""The real CLI in a process of its own, forked from a server that imported it once.

Every `backupctl` the suite starts used to be a fresh interpreter paying ~0.5 CPU-s of imports
(SQLAlchemy, pydantic, typer/rich) before doing anything: more than the work itself in most
tests, and the suite is CPU-bound on two cores. `run` forks the command instead from a
forkserver (multiprocessing's, one per test worker) that imported every backupctl module
once; the child is still a process of its own: its own pid, environment, umask, signal
handlers, stdin/stdout/stderr (files), exit status (`main()`'s `sys.exit`), killed on
timeout, nothing shared with the test or with the commands before it (the server never runs
a command, it only forks).

What a fork cannot give a command, a test that needs it starts `BACKUPCTL` itself: its own
argv in `ps` (the forked child shows the server's), a process group of its own, and module
state taken at import (the locale and the environment modules read when imported are the
server's; `TZ` and `TMPDIR` are read again).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pkgutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_CONTEXT = multiprocessing.get_context("forkserver")


def _modules() -> list[str]:
    """Every backupctl module but `__main__` (which runs the CLI when imported)."""
    import backupctl

    return [m.name for m in pkgutil.walk_packages(backupctl.__path__, "backupctl.")
            if not m.name.endswith("__main__")]


_CONTEXT.set_forkserver_preload(_modules())


def _child(args: Sequence[str], env: Mapping[str, str], streams: Sequence[str],
           status: str) -> None:
    """In the forked child: the environment, the three streams, then `backupctl ARGS`; its
    exit status written to `status`. multiprocessing's own `exitcode` was sometimes 255 for
    a child whose stderr showed exit 2 when several threads ran commands at once
    (tests/integration/cli/test_usage_errors.py, 3 runs in 4; likely another thread's
    `Process.start()` clean-up polling the same child's status pipe)."""
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    tempfile.tempdir = None  # TMPDIR read again, not the server's answer
    for fd, path in enumerate(streams):
        opened = os.open(path, os.O_RDONLY if fd == 0 else os.O_WRONLY)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace",  # noqa: SIM115
                      closefd=False)
    sys.argv = ["backupctl", *args]
    from backupctl.cli.main import main

    code = 1
    try:
        main()
        code = 0
    except SystemExit as exc:  # as the interpreter turns it into an exit status
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        raise
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        Path(status).write_text(str(code))


def run(args: Sequence[str], *, env: Mapping[str, str], input: str | None = None,
        timeout: float | None = None, check: bool = False,
        ) -> subprocess.CompletedProcess[str]:
    """`backupctl ARGS` as subprocess.run(..., capture_output=True, text=True) would run it."""
    with tempfile.TemporaryDirectory(prefix="backupctl-cli-") as tmp:
        streams = [Path(tmp) / name for name in ("stdin", "stdout", "stderr")]
        status = Path(tmp) / "status"
        streams[0].write_text(input or "", encoding="utf-8")
        for path in streams[1:]:
            path.touch()
        child = _CONTEXT.Process(target=_child, args=(
            list(args), dict(env), [str(p) for p in streams], str(status)))
        child.start()
        child.join(timeout)
        timed_out = child.exitcode is None
        if timed_out:
            child.kill()
            child.join()
        stdout, stderr = (p.read_text(encoding="utf-8", errors="replace")
                          for p in streams[1:])
        written = status.read_text() if status.exists() else ""
    argv = ["backupctl", *args]
    if timed_out:
        raise subprocess.TimeoutExpired(argv, timeout or 0, stdout, stderr)
    code = int(written) if written else child.exitcode  # killed by a signal: -N
    assert code is not None
    if check and code != 0:
        raise subprocess.CalledProcessError(code, argv, stdout, stderr)
    return subprocess.CompletedProcess(argv, code, stdout, stderr)
