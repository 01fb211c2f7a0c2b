"""The notification families (SPEC §8): newest delivery per configured channel."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import pytest
from prometheus_client import generate_latest

from backupctl.metrics import exposition, registry, render
from backupctl.notify import record
from backupctl.notify.model import DeliveryResult
from tests.unit.metrics.conftest import Fleet

AT = "2026-02-01T00:00:00.000000+00:00"
LATER = "2026-02-02T00:00:00.000000+00:00"


@pytest.fixture
def notified(fleet: Fleet) -> Fleet:
    record.record(fleet.store, [DeliveryResult("mail", "test", True, sent_at=AT),
                                DeliveryResult("chat", "test", True, sent_at=AT),
                                DeliveryResult("old", "test", False, "down", sent_at=AT)],
                  started_at=AT)
    record.record(fleet.store, [DeliveryResult("mail", "failure", False, "down",
                                               sent_at=LATER)], started_at=LATER)
    record.record_ping(fleet.store, job="ok", kind="backup", signal="start", ok=True,
                       error=None, attempts=1, run_id=None, sent_at=LATER)
    return fleet


def _text(fleet: Fleet, channels: list[str] | None) -> str:
    source = dataclasses.replace(fleet.source(),
                                 channels=None if channels is None else lambda: channels)
    return exposition(source)[0].decode()


def test_status_and_last_success_per_configured_channel(notified: Fleet) -> None:
    text = _text(notified, ["mail", "chat", "ping", "never-used"])
    assert 'backupctl_notify_last_status{channel="mail"} 0.0' in text
    assert 'backupctl_notify_last_status{channel="chat"} 1.0' in text
    assert 'backupctl_notify_last_status{channel="ping"} 1.0' in text
    assert ('backupctl_notify_last_success_timestamp_seconds{channel="mail"} 1.769904e+09'
            in text)
    # A removed channel stops alerting; one never tried has nothing to say yet.
    assert 'channel="old"' not in text and 'channel="never-used"' not in text


def test_without_a_channel_list_every_channel_in_state_is_exposed(notified: Fleet) -> None:
    assert 'backupctl_notify_last_status{channel="old"} 0.0' in _text(notified, None)


def test_renderer_and_promtool_accept_the_notify_families(notified: Fleet) -> None:
    reg = registry(notified.source())[0]
    assert render(reg) == generate_latest(reg)
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run `make install`")
    result = subprocess.run([promtool, "check", "metrics"], input=render(reg),
                            capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == b"", "promtool lint findings"
