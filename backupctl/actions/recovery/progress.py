"""Progress of a restore on the target, for a terminal's bar (never under systemd/cron).

restic >= 0.16 prints `--json` status lines during a restore; those go straight to the sink.
restic 0.14 prints none, so while no such line came a thread asks the target every
`interval` seconds how many bytes and files are under the target directory (one small
`python3 -I -c` on the runner, the directory as data on stdin) and feeds the sink the same
kind of line. It stops with the restore; a failed poll only stops the polling.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator

from backupctl.execute import Runner, StdoutSink

INTERVAL = 2.0

SIZE = r"""
import os, sys
root = sys.stdin.read()
files = size = 0
stack = [root]
while stack:
    try:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    files += 1
                    size += entry.stat(follow_symlinks=False).st_size
    except OSError:
        pass
print(size, files)
"""


class _Watched:
    """The sink, remembering whether restic itself printed a status line."""

    def __init__(self, sink: StdoutSink) -> None:
        self.sink = sink
        self.restic_reports = False

    def __call__(self, chunk: bytes) -> None:
        if b'"message_type"' in chunk:
            self.restic_reports = True
        self.sink(chunk)


@contextlib.contextmanager
def polled(runner: Runner, directory: str, sink: StdoutSink | None, *,
           interval: float = INTERVAL) -> Iterator[StdoutSink | None]:
    """The sink for restic's stdout; while restic reports nothing, the target's own count
    of bytes and files goes to `sink` every `interval` seconds."""
    if sink is None:
        yield None
        return
    watched = _Watched(sink)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(interval) and not watched.restic_reports:
            result = runner.run(["python3", "-I", "-c", SIZE], stdin=directory.encode(),
                                timeout=60)
            if stop.is_set() or not result.ok:
                return
            size, files = (int(x) for x in result.stdout.split())
            sink(json.dumps({"message_type": "status", "bytes_restored": size,
                             "files_restored": files}).encode() + b"\n")

    thread = threading.Thread(target=poll, daemon=True, name="restore-progress")
    thread.start()
    try:
        yield watched
    finally:
        stop.set()
        thread.join(timeout=5)
