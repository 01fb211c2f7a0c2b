"""Tripwire checks: changed-file spikes and canary hashing on the host (FakeRunner)."""

from __future__ import annotations

from typing import Any

import pytest

from backupctl.actions import tripwire
from backupctl.config.schema import Job
from backupctl.errors import CommandFailed
from backupctl.execute.fake import FakeRunner


def _job(**tripwire_keys: Any) -> Job:
    return Job.model_validate({
        "job": "emr", "host": {"address": "local"}, "source": {"paths": ["/srv"]},
        "repository": {"url": "/r", "password_file": "/pw"}, "generations": {"last": 2},
        "schedule": {"backup": "daily", "verify": "weekly"},
        "tripwire": tripwire_keys or {}})


def test_a_normal_day_is_not_a_spike() -> None:
    assert tripwire.spike_reason(_job(), changed=900, history=[80, 100, 120]) is None


def test_ten_times_the_median_and_above_the_minimum_is_a_spike() -> None:
    reason = tripwire.spike_reason(_job(), changed=5000, history=[80, 100, 120, 5])
    assert reason is not None and "5000 files" in reason and "median 90" in reason


def test_a_spike_below_changed_min_is_ignored() -> None:
    assert tripwire.spike_reason(_job(), changed=999, history=[1, 2, 3]) is None
    assert tripwire.spike_reason(_job(changed_min=10), changed=999, history=[1, 2, 3])


def test_no_history_no_spike() -> None:
    assert tripwire.spike_reason(_job(), changed=10**6, history=[]) is None


def test_canaries_are_hashed_in_one_quoted_command() -> None:
    runner = FakeRunner()
    paths = ["/srv/a b;$(x)", "/srv/カナリア", "/srv/gone"]
    out = (b"a" * 64 + b"  /srv/a b;$(x)\0" + b"b" * 64 + b"  " + "/srv/カナリア".encode()
           + b"\0")
    runner.on("sha256sum", returncode=1, stdout=out, stderr="sha256sum: /srv/gone: No such file")

    found = tripwire.hash_on_host(runner, paths, timeout=10, job="emr")

    assert found == {"/srv/a b;$(x)": "a" * 64, "/srv/カナリア": "b" * 64, "/srv/gone": None}
    (call,) = runner.calls
    assert call.words == ["sha256sum", "-z", "--", *paths]


def test_hashing_that_cannot_run_is_a_failure_not_a_pass() -> None:
    runner = FakeRunner()
    runner.on("sha256sum", returncode=127, stderr="sha256sum: not found")
    with pytest.raises(CommandFailed, match="hashing canaries failed"):
        tripwire.hash_on_host(runner, ["/srv/c"], timeout=10, job="emr")
