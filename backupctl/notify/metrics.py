"""Metric families of notification delivery (SPEC §8), written for the exporter.

NOT wired yet: the main developer adds `families(store)` to the collector
(backupctl/metrics) and `SPECS` to `backupctl.metrics.families.ALL` in the second phase.
The alert rule `BackupctlNotifyChannelFailing` (docs/prometheus/backupctl.rules.yml) uses
them already. Label `channel` is the channel's name from the configuration, or `ping` for
the dead-man's-switch pings.
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from backupctl.metrics.families import Spec
from backupctl.metrics.state import unix
from backupctl.notify.record import last_by_channel
from backupctl.state.db import Store

SPECS: tuple[Spec, ...] = (
    Spec("backupctl_notify_last_status",
         "1 if the newest delivery attempt on the channel succeeded, else 0", ("channel",)),
    Spec("backupctl_notify_last_success_timestamp_seconds",
         "Time (Unix) of the newest delivery that reached the channel; absent if none",
         ("channel",)),
)


def families(store: Store) -> list[GaugeMetricFamily]:
    status, success = (GaugeMetricFamily(s.name, s.help, labels=list(s.labels)) for s in SPECS)
    for channel, entry in sorted(last_by_channel(store).items()):
        status.add_metric([channel], 1.0 if entry["ok"] else 0.0)
        if entry["last_success"]:
            success.add_metric([channel], unix(entry["last_success"]))
    return [status, success]
