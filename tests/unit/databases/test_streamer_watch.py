"""The dump helper's RetryLines: restic 0.17+ retrying the repository's config or keys (it
cannot be opened now) stops the `restic backup --stdin` at once; other retries may last the
budget; a success resets it. Tail hands every chunk to the watch and stops the child."""

from __future__ import annotations

import os
import threading

from backupctl.databases.streamer_watch import RetryLines, Tail

OPENING = (b'Stat(<config/>) returned error, retrying after 652ms: Head "http://127.0.0.1:9/x/'
           b'config": request timeout\n')
DATA = b"Save(<data/1f75>) returned error, retrying after 1.2s: connection reset\n"


def test_a_retried_config_stops_it_at_once_even_split_across_chunks() -> None:
    watch = RetryLines()
    assert watch(OPENING[:30]) is False
    assert watch(OPENING[30:]) is True
    assert "request timeout" in watch.stopped


def test_other_retries_are_allowed_until_the_budget_and_a_success_resets() -> None:
    watch = RetryLines(budget=0.0)
    assert watch(b"Save(<data/1f75>) operation successful after 1 retries\n") is False
    assert RetryLines(budget=3600)(DATA) is False
    assert watch(DATA) is True  # a budget of 0 s: the first retry has used it up


def test_tail_stops_the_child_when_its_watch_says_so() -> None:
    read_end, write_end = os.pipe()
    stopped = threading.Event()
    with os.fdopen(read_end, "rb") as stream:
        tail = Tail(stream, watch=RetryLines(), stop=stopped.set)
        os.write(write_end, b"reading the index\n" + OPENING)
        os.close(write_end)
        assert "request timeout" in tail.text()
    assert stopped.is_set()
