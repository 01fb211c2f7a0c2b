"""The one set of formatters: durations, relative ages and local times in ja and en."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from backupctl import fmt

TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("seconds", "en", "ja"), [
    (4.23, "4.2s", "4.2秒"),
    (45, "45s", "45秒"),
    (725, "12m05s", "12分5秒"),
    (720, "12m00s", "12分"),
    (7500, "2h05m", "2時間5分"),
    (7200, "2h00m", "2時間"),
    (3 * 86400 + 4 * 3600 + 59, "3d04h", "3日4時間"),
    (86400, "1d", "1日"),
])
def test_duration_has_two_units_in_each_language(seconds: float, en: str, ja: str) -> None:
    assert fmt.duration(seconds, "en") == en
    assert fmt.duration(seconds, "ja") == ja


def test_duration_unknown_is_a_dash() -> None:
    assert fmt.duration(None, "ja") == fmt.duration(None, "en") == "–"


@pytest.mark.parametrize(("seconds", "en", "ja"), [
    (10, "just now", "たった今"),
    (60, "1 minute ago", "1分前"),
    (3 * 3600 + 3599, "3 hours ago", "3時間前"),
    (86400 * 2.9, "2 days ago", "2日前"),
    (-3 * 3600, "in 3 hours", "3時間後"),
    (-30, "just now", "たった今"),
])
def test_ago_is_one_unit_rounded_down(seconds: float, en: str, ja: str) -> None:
    assert fmt.ago(seconds, "en") == en
    assert fmt.ago(seconds, "ja") == ja


def test_local_time_is_the_zones_wall_clock_to_the_minute() -> None:
    stored = "2026-12-07T16:04:13.510891+00:00"
    assert fmt.local(stored, TOKYO) == "2026-12-08 01:04"
    assert fmt.local(stored, UTC) == "2026-12-07 16:04"
    assert fmt.local(None, TOKYO) == fmt.local("not a time", TOKYO) == "–"


def test_local_time_follows_daylight_saving_by_the_zone_name() -> None:
    assert fmt.local("2026-07-01T10:00:00+00:00", BERLIN) == "2026-07-01 12:00"
    assert fmt.local("2026-12-01T10:00:00+00:00", BERLIN) == "2026-12-01 11:00"


def test_local_ago_puts_the_age_beside_the_time() -> None:
    now = datetime(2026, 12, 7, 19, 5, tzinfo=UTC)
    stored = "2026-12-07T16:04:13+00:00"
    assert fmt.local_ago(stored, now=now, tz=TOKYO, lang="ja") == "2026-12-08 01:04（3時間前）"
    assert fmt.local_ago(stored, now=now, tz=TOKYO, lang="en") == \
        "2026-12-08 01:04 (3 hours ago)"
    assert fmt.local_ago(now + timedelta(hours=2), now=now, tz=UTC, lang="en") == \
        "2026-12-07 21:05 (in 2 hours)"


def test_zone_by_name_and_label() -> None:
    assert fmt.zone("Asia/Tokyo") == TOKYO
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert fmt.zone_label(TOKYO, at) == "Asia/Tokyo, UTC+09:00"
    assert fmt.zone_label(timezone(timedelta(hours=-3, minutes=-30)), at) == "UTC-03:30"
    assert fmt.zone_label(UTC, at) == "UTC"


@pytest.mark.parametrize("name", ["Mars/Olympus", "Asia", "/etc/localtime", "../../etc/passwd",
                                  " Asia/Tokyo"])
def test_unknown_or_path_like_zone_is_refused(name: str) -> None:
    with pytest.raises(ZoneInfoNotFoundError):
        fmt.zone(name)


def test_system_zone_follows_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert fmt.zone(None) == TOKYO
    monkeypatch.setenv("TZ", ":Europe/Berlin")
    assert fmt.zone(None) == BERLIN


def test_unknown_language_falls_back_to_japanese() -> None:
    assert fmt.lang_or_default("fr") == "ja"
    assert fmt.lang_or_default("en") == "en"
    assert fmt.LANGS == ("ja", "en")
