"""Mails say when in the configured timezone, to the minute, with the zone (#28)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from backupctl.notify import message
from backupctl.notify.message import local_time, render
from backupctl.notify.model import Event

AT = "2026-12-07T16:04:13.510891+00:00"


def test_the_time_of_an_event_is_local_to_the_minute() -> None:
    event = Event(name="failure", job="emr-db", kind="backup", repository="primary",
                  reason="x", at=AT, orchestrator="backup01")
    body = render(event, lang="ja", description=None, tz=ZoneInfo("Asia/Tokyo")).body
    assert "日時: 2026-12-08 01:04 (Asia/Tokyo, UTC+09:00)" in body
    assert "16:04" not in body and "+00:00" not in body
    body = render(event, lang="en", description=None, tz=ZoneInfo("Europe/Berlin")).body
    assert "2026-12-07 17:04 (Europe/Berlin, UTC+01:00)" in body


def test_the_test_message_too() -> None:
    body = message.test_message(lang="en", channel="mail", orchestrator="b1", at=AT,
                                tz=ZoneInfo("Asia/Tokyo")).body
    assert "(2026-12-08 01:04 (Asia/Tokyo, UTC+09:00))" in body


def test_an_unreadable_time_is_shown_as_stored() -> None:
    assert local_time("yesterday", ZoneInfo("Asia/Tokyo")) == "yesterday"
