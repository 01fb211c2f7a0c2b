"""restic's exit codes, in one table. An unknown code is a failure, never a pass.

restic 0.14 (Debian 12) uses only 0, 1, 3 and 130; 10, 11 and 12 arrived in 0.17. For older
versions the cause is recognised from stderr (`classify`).
"""

from __future__ import annotations

import enum


class Outcome(enum.Enum):
    OK = "ok"
    FATAL = "fatal error"
    INCOMPLETE = "snapshot created but some source files could not be read"
    NO_REPOSITORY = "repository does not exist"
    LOCKED = "repository is locked"
    WRONG_PASSWORD = "wrong password or no key found"  # noqa: S105 (a message)
    INTERRUPTED = "interrupted"
    UNKNOWN = "unknown exit code"


EXIT_CODES: dict[int, Outcome] = {
    0: Outcome.OK,
    1: Outcome.FATAL,
    3: Outcome.INCOMPLETE,
    10: Outcome.NO_REPOSITORY,
    11: Outcome.LOCKED,
    12: Outcome.WRONG_PASSWORD,
    130: Outcome.INTERRUPTED,
}

_STDERR_HINTS: list[tuple[str, Outcome]] = [
    ("Is there a repository at the following location?", Outcome.NO_REPOSITORY),
    ("unable to open config file", Outcome.NO_REPOSITORY),
    ("wrong password or no key found", Outcome.WRONG_PASSWORD),
    ("repository is already locked", Outcome.LOCKED),
    ("unable to create lock", Outcome.LOCKED),
]


def classify(returncode: int, stderr: str) -> Outcome:
    outcome = EXIT_CODES.get(returncode, Outcome.UNKNOWN)
    if outcome is Outcome.FATAL:
        for hint, refined in _STDERR_HINTS:
            if hint in stderr:
                return refined
    return outcome
