"""The stream helper as backupctl starts it: its program text, argv, deadline and reply.

The helper (streamer_schema.py + streamer.py + streamer_modes.py) runs as `python3 -I -c
SOURCE` through a Runner, on a source host (a dump, dump.py) or on the orchestrator
(PostgreSQL's quick proof, which pipes `restic dump` into `pg_restore --list`); it reads
one JSON header on stdin and answers with one JSON line. Which of its modes runs is the
kind's (`kinds.Kind.HELPER_MODE`).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from backupctl.execute import Result

PYTHON = "python3"
PARTS = ("streamer_schema.py", "streamer_watch.py", "streamer.py", "streamer_modes.py")
# The helper stops itself a little before the runner would: a remote helper outlives a
# closed SSH channel and must not go on to make a snapshot that nobody records. The margin
# (5 %, at least 2 s, at most half) leaves it time to say so before the runner gives up.
DEADLINE_MARGIN_SHARE = 0.05
DEADLINE_MARGIN_MIN = 2.0


def helper_deadline(timeout: float | None) -> float | None:
    """Seconds the helper may run when the runner waits `timeout` seconds for it."""
    if not timeout:
        return None
    return timeout - min(max(timeout * DEADLINE_MARGIN_SHARE, DEADLINE_MARGIN_MIN), timeout / 2)


@cache
def helper_source() -> str:
    """The stream helper's program text (sent as `python3 -I -c`): its files, in order, as
    one program."""
    here = Path(__file__).parent
    return "\n".join((here / part).read_text(encoding="utf-8") for part in PARTS)


def helper_argv(python: str = PYTHON) -> list[str]:
    return [python, "-I", "-c", helper_source()]


def parse_reply(result: Result) -> dict[str, Any] | None:
    """The helper's one JSON line (the last line of its stdout), or None."""
    lines = result.stdout.decode("utf-8", "replace").strip().splitlines()
    if not lines:
        return None
    try:
        record = json.loads(lines[-1])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
