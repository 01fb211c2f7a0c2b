"""The schema's value types: durations, percentages, samples, generations, copies."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from backupctl.config.schema import Copy, Generations, Host, Schedule, Verify
from backupctl.config.values import (
    Sample,
    format_duration,
    parse_duration,
    parse_percent,
    parse_sample,
)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), (" 1d ", 86400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("value", ["0s", "-1h", "7", "1.5h", "7days", "h", "", 7, None, "7 d"])
def test_bad_durations(value: Any) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


@pytest.mark.parametrize(("seconds", "text"), [(30, "30s"), (900, "15m"), (7200, "2h"),
                                               (604800, "7d"), (90, "90s"), (5400, "90m")])
def test_durations_format_back_to_the_shortest_unit(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(("text", "fraction"), [
    ("5%", 0.05), ("100%", 1.0), ("0.5%", 0.005), ("12.5%", 0.125)])
def test_percentages(text: str, fraction: float) -> None:
    assert parse_percent(text) == pytest.approx(fraction)


@pytest.mark.parametrize("value", ["0%", "100.1%", "-5%", "5", "five%", 5, 0.05, "5 %x"])
def test_bad_percentages(value: Any) -> None:
    with pytest.raises(ValueError, match="invalid percentage"):
        parse_percent(value)


def test_sample_forms() -> None:
    assert parse_sample("all") == Sample(fraction=1.0)
    assert parse_sample("5%") == Sample(fraction=0.05)
    assert parse_sample(200) == Sample(count=200)
    assert parse_sample(0) == Sample(count=0)


@pytest.mark.parametrize("value", [-1, True, "5", "some", 1.5, None])
def test_bad_samples(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_sample(value)


@pytest.mark.parametrize(("sample", "total", "size"), [
    (Sample(fraction=0.05), 1000, 50),
    (Sample(fraction=0.05), 10, 1),  # never zero files out of some
    (Sample(fraction=0.05), 0, 0),
    (Sample(fraction=1.0), 7, 7),
    (Sample(count=200), 50, 50),
    (Sample(count=200), 5000, 200),
    (Sample(count=0), 50, 0),
])
def test_sample_size(sample: Sample, total: int, size: int) -> None:
    assert sample.size(total) == size


def test_verify_round_trips_its_sample_and_durations() -> None:
    verify = Verify.model_validate({"sample": "5%", "read_data_subset": "10%", "rto": "2h"})
    assert verify.sample == Sample(fraction=0.05)
    assert verify.read_data_subset == pytest.approx(0.1)
    assert verify.rto == 7200
    dumped = verify.model_dump(mode="json")
    assert dumped["sample"] == "5%" and dumped["rto"] == "2h"
    assert Verify.model_validate({"sample": "all"}).model_dump(mode="json")["sample"] == "all"
    assert Verify.model_validate({"sample": 30}).model_dump(mode="json")["sample"] == 30


def test_default_sample_is_five_percent() -> None:
    assert Verify().sample == Sample(fraction=0.05)


def test_generations_need_one_key() -> None:
    with pytest.raises(ValidationError, match="at least one of"):
        Generations()
    generations = Generations(last=3, daily=14)
    assert generations.policy() == {"last": 3, "daily": 14}
    with pytest.raises(ValidationError):
        Generations(last=0)


def test_copy_name_primary_is_reserved() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        Copy.model_validate({"name": "primary", "kind": "offline", "url": "/x",
                             "password_file": "/pw", "max_age": "1d"})


def test_copy_kind_is_offline_or_immutable() -> None:
    with pytest.raises(ValidationError):
        Copy.model_validate({"name": "c", "kind": "online", "url": "/x", "password_file": "/pw",
                             "max_age": "1d"})


def test_host_display_and_local() -> None:
    assert Host(address="local").display() == "local"
    assert Host(address="local").is_local
    remote = Host(address="192.0.2.10", user="b", identity_file="/id")  # type: ignore[arg-type]
    assert remote.display() == "b@192.0.2.10:22"
    with pytest.raises(ValidationError):
        Host(address="192.0.2.10", user="b", identity_file="/id", port=0)  # type: ignore[arg-type]


def test_schedule_copy_is_read_from_the_yaml_key_copy() -> None:
    schedule = Schedule.model_validate({"backup": "daily", "copy": "weekly", "verify": "daily"})
    assert schedule.copy_ == "weekly"
    assert schedule.model_dump(by_alias=True)["copy"] == "weekly"


@pytest.mark.parametrize(("name", "ok"), [
    ("backupctl-restore", True), ("pg_restore_2", True), ("root", False), ("postgres", False),
    ("Restore", False), ("a b", False), ("", False), ("x" * 33, False)])
def test_restore_user_is_a_plain_unprivileged_name(name: str, ok: bool) -> None:
    from backupctl.config.schema import GlobalConfig

    base = {"jobs_dir": "/j", "state_dir": "/s", "scratch_dir": "/x", "known_hosts": "/k"}
    assert GlobalConfig.model_validate(base).restore_user == "backupctl-restore"
    if ok:
        assert GlobalConfig.model_validate({**base, "restore_user": name}).restore_user == name
    else:
        with pytest.raises(ValidationError):
            GlobalConfig.model_validate({**base, "restore_user": name})


@pytest.mark.parametrize("value", ["restic", "restic-0.18", "/usr/local/bin/restic",
                                   "/opt/restic 0.18/restic"])
def test_host_restic_is_a_command_or_an_absolute_path(value: str) -> None:
    assert Host(address="local", restic=value).restic == value
    assert Host(address="local").restic == "restic"


@pytest.mark.parametrize(("value", "words"), [
    ("bin/restic", "relative path"), ("./restic", "relative path"),
    ("", "command name or an absolute path"), ("/opt/restic\n", "control characters")])
def test_host_restic_refuses_what_would_depend_on_the_working_directory(
        value: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        Host(address="local", restic=value)


@pytest.mark.parametrize(("value", "accepted"), [
    ("1h", True), ("30d", True), ("3650d", True),
    ("59m", False), ("3651d", False), ("99999999999999999999999d", False)])
def test_prove_within_is_bounded(value: str, accepted: bool) -> None:
    if accepted:
        assert Verify.model_validate({"prove_within": value}).prove_within is not None
        return
    with pytest.raises(ValidationError, match=r"out of range: use 1h to 3650d"):
        Verify.model_validate({"prove_within": value})
