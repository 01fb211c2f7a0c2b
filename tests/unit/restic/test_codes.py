"""restic's exit-code table: every code maps to one outcome; unknown codes are failures."""

from __future__ import annotations

import pytest

from backupctl.restic.codes import EXIT_CODES, ResticExit, classify


@pytest.mark.parametrize(("code", "outcome"), [
    (0, ResticExit.OK), (1, ResticExit.FATAL), (3, ResticExit.INCOMPLETE),
    (10, ResticExit.NO_REPOSITORY),
    (11, ResticExit.LOCKED), (12, ResticExit.WRONG_PASSWORD), (130, ResticExit.INTERRUPTED)])
def test_documented_codes(code: int, outcome: ResticExit) -> None:
    assert classify(code, "") is outcome


@pytest.mark.parametrize("code", [2, 4, 9, 13, 42, 127, 137, 255, -1, -9])
def test_unknown_codes_are_never_ok(code: int) -> None:
    assert classify(code, "") is ResticExit.UNKNOWN


def test_only_zero_is_ok() -> None:
    assert [c for c, o in EXIT_CODES.items() if o is ResticExit.OK] == [0]


@pytest.mark.parametrize(("stderr", "outcome"), [
    # restic 0.14's words for a missing repository (local and REST backends)
    ("Fatal: unable to open config file: stat /srv/x/config: no such file or directory\n"
     "Is there a repository at the following location?\n/srv/x", ResticExit.NO_REPOSITORY),
    ("Fatal: wrong password or no key found", ResticExit.WRONG_PASSWORD),
    ("unable to create lock in backend: repository is already locked by PID 7 on h",
     ResticExit.LOCKED),
    ("Fatal: some other problem", ResticExit.FATAL),
    # restic 0.14 against a dead REST server or an unknown host: unreachable, not missing
    ('Fatal: unable to open config file: client.Head: Head "http://127.0.0.1:1/x/config": '
     "dial tcp 127.0.0.1:1: connect: connection refused\nIs there a repository at the "
     "following location?\nrest:http://127.0.0.1:1/x/", ResticExit.UNREACHABLE),
    ('Fatal: unable to open config file: client.Head: Head "http://nas.invalid:8000/x/config":'
     " dial tcp: lookup nas.invalid on 10.0.0.53:53: no such host\nIs there a repository at "
     "the following location?", ResticExit.UNREACHABLE),
    ("Fatal: unable to open repository at sftp:u@nas:/x: unable to start the sftp session, "
     "error: EOF", ResticExit.UNREACHABLE),
])
def test_exit_1_is_refined_from_stderr(stderr: str, outcome: ResticExit) -> None:
    assert classify(1, stderr) is outcome


def test_stderr_hints_do_not_turn_a_failure_into_something_else_for_other_codes() -> None:
    # Code 3 means a snapshot exists; a hint in the file list must not change that.
    assert classify(3, "wrong password or no key found") is ResticExit.INCOMPLETE
    assert classify(0, "Is there a repository at the following location?") is ResticExit.OK
