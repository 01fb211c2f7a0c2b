"""The notification metric families read the newest delivery per channel."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from backupctl.notify import metrics, record
from backupctl.notify.model import DeliveryResult
from backupctl.state.db import Store


def test_last_status_and_last_success_per_channel(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    at = "2026-02-01T00:00:00.000000+00:00"
    later = "2026-02-02T00:00:00.000000+00:00"
    record.record(store, [DeliveryResult("mail", "test", True, sent_at=at),
                          DeliveryResult("chat", "test", True, sent_at=at)], started_at=at)
    record.record(store, [DeliveryResult("mail", "failure", False, "down", sent_at=later)],
                  started_at=later)

    class Families(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            return metrics.families(store)

    registry = CollectorRegistry()
    registry.register(Families())
    text = generate_latest(registry).decode()
    assert 'backupctl_notify_last_status{channel="mail"} 0.0' in text
    assert 'backupctl_notify_last_status{channel="chat"} 1.0' in text
    assert 'backupctl_notify_last_success_timestamp_seconds{channel="mail"} 1.769904e+09' in text
