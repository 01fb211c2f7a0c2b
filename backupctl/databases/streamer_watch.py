"""The stream helper, part one: a child's output read as it comes (`Tail`), and restic's
retries of a repository it cannot reach (`RetryLines`).

Sent before streamer.py as part of one program text (`python3 -I -c`, helper.helper_source),
so it needs only the standard library of python3 >= 3.6. restic 0.17+ retries a repository it
cannot reach for up to 15 minutes, saying so on stderr; backupctl.restic.watch reads the same
lines for every restic run backupctl starts itself, this for the `restic backup --stdin` the
helper starts: opening the repository (its config or keys) retried means unreachable now;
other requests may be retried for a minute without a success.
"""

import os
import re
import threading
import time
from typing import IO, Callable, List, Optional  # noqa: F401 (type comments)

TAIL = 16384  # bytes of a child's stderr kept for messages

RETRY = re.compile(r"^\w+\((.*?)\) returned error, retrying after ")
RETRY_OK = re.compile(r"^\w+\(.*\) operation successful after \d+ retries")
OPENING = re.compile(r"^<(config|key)/|^key$")
RETRY_BUDGET = 60.0


class RetryLines:
    """Told restic's stderr as it comes; `stopped` holds the line that gave the repository
    up (then True is returned once, and restic is killed)."""

    def __init__(self, budget: float = RETRY_BUDGET) -> None:
        self.budget = budget
        self.since = -1.0  # the first retry since the last success (-1: none)
        self.partial = b""
        self.stopped = ""

    def __call__(self, chunk: bytes) -> bool:
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()[-4096:]
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if RETRY_OK.match(line):
                self.since = -1.0
                continue
            match = RETRY.match(line)
            if match is None:
                continue
            now = time.monotonic()
            self.since = now if self.since < 0 else self.since
            if OPENING.match(match.group(1)) or now - self.since >= self.budget:
                self.stopped = line
                return True
        return False


class Tail:
    """Drains a child's pipe in a thread; keeps its end (or all of it). `watch`, told every
    chunk, may `stop` the child."""

    def __init__(self, stream: IO[bytes], keep: Optional[int] = TAIL,
                 watch: Optional[RetryLines] = None,
                 stop: Optional[Callable[[], None]] = None) -> None:
        self.data = b""
        self.keep = keep
        self.stream = stream
        self.watch = watch
        self.stop = stop
        self.thread = threading.Thread(target=self._run)
        self.thread.daemon = True
        self.thread.start()

    def _run(self) -> None:
        parts = []  # type: List[bytes]
        kept = 0
        fd = self.stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            if self.watch is not None and not self.watch.stopped and self.watch(chunk) \
                    and self.stop is not None:
                self.stop()
            parts.append(chunk)
            kept += len(chunk)
            if self.keep is not None and kept > 4 * self.keep:
                joined = b"".join(parts)[-self.keep:]
                parts, kept = [joined], len(joined)
        data = b"".join(parts)
        self.data = data[-self.keep:] if self.keep is not None else data

    def text(self) -> str:
        self.thread.join(30)
        return self.data.decode("utf-8", "replace")
