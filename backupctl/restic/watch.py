"""A dead or hanging repository ends a restic run in bounded time, on every restic version.

restic 0.14–0.16 give up on an unreachable repository at once (`connection refused`, `no such
host`: codes.py tells that from a missing repository). restic 0.17 and later instead retry
every failed request of the repository for up to 15 minutes, with no option to shorten it,
and say so on stderr each time:

    Stat(<config/>) returned error, retrying after 720ms: Head "…/config": dial tcp …: connect: …
    Load(<data/1f75…>, 0, 0) returned error, retrying after 1.5s: …
    Load(<data/1f75…>, 0, 0) operation successful after 2 retries

`RetryWatch` reads those lines as they come (the runner's `stderr_watch`) and stops restic:
- at once when opening the repository (its config or keys) has to be retried: the repository
  cannot be reached now, as 0.14 would have said;
- when retries of an open repository have gone on for RETRY_BUDGET seconds without a
  success: about as long as restic 0.14 retries a request (10 attempts) before it fails.
The run is then `ResticExit.UNREACHABLE` ("repository unreachable", exit 1). A server that
accepts connections and never answers makes restic 0.17+ retry after its stuck-request
timeout, which this watch then sees as well.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

RETRY_BUDGET = 60.0  # seconds of retries of an opened repository before it is given up
_RETRY = re.compile(r"^(?P<op>\w+)\((?P<what>.*?)\) returned error, retrying after ")
_SUCCESS = re.compile(r"^\w+\(.*\) operation successful after \d+ retries")
# What restic reads to open a repository: its config, then its keys.
_OPENING = re.compile(r"^<(config|key)/|^key$")


class RetryWatch:
    """A runner's `stderr_watch` for one restic run; `reason` says why it stopped it."""

    def __init__(self, *, budget: float = RETRY_BUDGET,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self.clock = clock
        self.reason: str | None = None
        self._since: float | None = None  # the first retry since the last success
        self._partial = b""
        self._lock = threading.Lock()

    def __call__(self, chunk: bytes) -> bool:
        with self._lock:
            lines = (self._partial + chunk).split(b"\n")
            self._partial = lines.pop()[-4096:]
            return any(self._line(line.decode("utf-8", "replace").strip()) for line in lines)

    def _line(self, line: str) -> bool:
        if _SUCCESS.match(line):
            self._since = None
            return False
        if (match := _RETRY.match(line)) is None:
            return False
        now = self.clock()
        if self._since is None:
            self._since = now
        if _OPENING.match(match.group("what")):
            self.reason = f"restic could not open the repository and kept retrying: {line}"
        elif now - self._since >= self.budget:
            self.reason = (f"restic kept retrying the repository for {now - self._since:.0f}s: "
                           f"{line}")
        return self.reason is not None
