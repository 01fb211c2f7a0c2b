"""restic's exit codes, in one table. An unknown code is a failure, never a pass.

restic 0.14 (Debian 12) uses only 0, 1, 3 and 130; 10, 11 and 12 arrived in 0.17. For older
versions the cause is recognised from stderr (`classify`). A repository that cannot be reached
(`connection refused`, `no such host`) is UNREACHABLE, never "does not exist": restic 0.14
says both with "Is there a repository at the following location?", and the hint to run
`backupctl init` would be wrong. restic 0.17+ retries such a repository instead; watch.py
stops it (the runner's Result is then `stopped`).
"""

from __future__ import annotations

import enum


class ResticExit(enum.Enum):
    OK = "ok"
    FATAL = "fatal error"
    INCOMPLETE = "snapshot created but some source files could not be read"
    NO_REPOSITORY = "repository does not exist"
    LOCKED = "repository is locked"
    WRONG_PASSWORD = "wrong password or no key found"  # noqa: S105 (a message)
    INTERRUPTED = "interrupted"
    UNREACHABLE = "repository unreachable"
    UNKNOWN = "unknown exit code"


EXIT_CODES: dict[int, ResticExit] = {
    0: ResticExit.OK,
    1: ResticExit.FATAL,
    3: ResticExit.INCOMPLETE,
    10: ResticExit.NO_REPOSITORY,
    11: ResticExit.LOCKED,
    12: ResticExit.WRONG_PASSWORD,
    130: ResticExit.INTERRUPTED,
}

_STDERR_HINTS: list[tuple[str, ResticExit]] = [
    # the network or the server, before the "Is there a repository …?" restic adds to them
    ("connect: connection refused", ResticExit.UNREACHABLE),
    ("no such host", ResticExit.UNREACHABLE),
    ("no route to host", ResticExit.UNREACHABLE),
    ("network is unreachable", ResticExit.UNREACHABLE),
    ("i/o timeout", ResticExit.UNREACHABLE),
    ("unable to start the sftp session", ResticExit.UNREACHABLE),
    ("Is there a repository at the following location?", ResticExit.NO_REPOSITORY),
    ("unable to open config file", ResticExit.NO_REPOSITORY),
    ("wrong password or no key found", ResticExit.WRONG_PASSWORD),
    ("repository is already locked", ResticExit.LOCKED),
    ("unable to create lock", ResticExit.LOCKED),
]


def classify(returncode: int, stderr: str) -> ResticExit:
    outcome = EXIT_CODES.get(returncode, ResticExit.UNKNOWN)
    if outcome is ResticExit.FATAL:
        for hint, refined in _STDERR_HINTS:
            if hint in stderr:
                return refined
    return outcome
