"""RetryWatch: restic 0.17+ retrying an unreachable repository is stopped at once while it
opens the repository, and after RETRY_BUDGET of retries once it is open; a success resets."""

from __future__ import annotations

from backupctl.restic.watch import RetryWatch

REFUSED = (b'Stat(<config/>) returned error, retrying after 720.6ms: Head "http://127.0.0.1:'
           b'9/x/config": dial tcp 127.0.0.1:9: connect: connection refused\n')


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_retried_config_stops_restic_at_once() -> None:
    watch = RetryWatch()

    assert watch(REFUSED) is True
    assert watch.reason is not None and "could not open the repository" in watch.reason
    assert "connection refused" in watch.reason


def test_retried_keys_stop_it_too_even_split_across_chunks() -> None:
    watch = RetryWatch()
    line = b"Load(<key/5a1c2e0f>, 0, 0) returned error, retrying after 1.2s: EOF\n"

    assert watch(line[:20]) is False
    assert watch(line[20:]) is True
    assert RetryWatch()(b"List(key) returned error, retrying after 500ms: EOF\n") is True


def test_retries_of_an_open_repository_are_allowed_for_the_budget() -> None:
    clock = Clock()
    watch = RetryWatch(budget=60, clock=clock)
    retry = b"Load(<data/1f75>, 0, 0) returned error, retrying after 2s: connection reset\n"

    assert watch(b"open repository\n" + retry) is False
    clock.now += 59
    assert watch(retry) is False
    clock.now += 2
    assert watch(retry) is True
    assert watch.reason is not None and "61s" in watch.reason


def test_a_success_starts_the_budget_again() -> None:
    clock = Clock()
    watch = RetryWatch(budget=60, clock=clock)
    retry = b"Save(<data/ab>) returned error, retrying after 2s: 502 Bad Gateway\n"

    assert watch(retry) is False
    clock.now += 50
    assert watch(b"Save(<data/ab>) operation successful after 3 retries\n") is False
    clock.now += 50
    assert watch(retry) is False
    clock.now += 59
    assert watch(retry) is False


def test_other_stderr_never_stops_it() -> None:
    watch = RetryWatch(budget=0)
    noise = (b"unable to open cache: mkdir /nonexistent: permission denied\n"
             b'{"message_type":"error","error":{"message":"open /x: permission denied"}}\n'
             b"Fatal: unable to open config file: Stat: stat /srv/x/config: no such file\n")

    assert watch(noise) is False and watch.reason is None
