"""docs/metrics.md documents every metric, label and alert (issue #6)."""

from __future__ import annotations

import re
from pathlib import Path

from backupctl.metrics.exporter import DEFAULT_LISTEN
from backupctl.metrics.families import ALL

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "metrics.md").read_text()


def test_every_metric_is_documented_with_its_labels() -> None:
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(backupctl_\w+)` \| ([^|]*) \|",
                                                         DOC, flags=re.M)}
    for spec in ALL:
        assert spec.name in rows, f"{spec.name} missing from docs/metrics.md"
        assert set(re.findall(r"`(\w+)`", rows[spec.name])) == set(spec.labels), spec.name


def test_every_alert_is_documented() -> None:
    rules = (ROOT / "docs" / "prometheus" / "backupctl.rules.yml").read_text()
    alerts = re.findall(r"- alert: (\w+)", rules)
    assert len(alerts) >= 10
    for alert in alerts:
        assert f"`{alert}`" in DOC, f"{alert} missing from docs/metrics.md"


def test_default_listen_address_and_dashboard_import_are_documented() -> None:
    assert DEFAULT_LISTEN in DOC
    assert "Import" in DOC and "docs/grafana/backupctl.json" in DOC
