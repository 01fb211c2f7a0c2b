"""End to end: real backups and restore tests → exporter (the CLI) → real Prometheus → alerts.

Also sends every PromQL expression of the Grafana dashboard to that Prometheus.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Workspace
from tests.integration.metrics.conftest import Exporter, Prometheus, http_get, wait_for
from tests.repo_damage import flip_byte_in_largest_pack
from tools import dashboard

DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana" / "backupctl.json"




def _value(prom: Prometheus, expr: str) -> float | None:
    result = prom.query(expr)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_sees_backups_a_failed_restore_test_and_alerts(
        workspace: Workspace, exporter_factory: Callable[[Workspace], Exporter],
        prometheus_factory: Callable[[int], Prometheus]) -> None:
    ws = workspace
    for name in ("alpha", "beta"):
        ws.job(name, verify={"sample": "all", "rto": "1h"})
        src = ws.root / "src" / name
        for i in range(5):
            (src / f"f{i}.dat").write_bytes(os.urandom(4096 + i))
        (src / "big.bin").write_bytes(os.urandom(1024 * 1024))
        result = ws.run("backup", name)
        assert result.returncode == 0, result.stderr
    good = ws.run("verify", "alpha", "--mode", "full")
    assert good.returncode == 0, good.stderr
    flip_byte_in_largest_pack(ws.root / "repos" / "beta")
    bad = ws.run("verify", "beta", "--mode", "full")
    assert bad.returncode == 3, bad.stderr

    exporter = exporter_factory(ws)
    prom = prometheus_factory(exporter.port)

    beta = 'backupctl_verify_last_status{backup_job="beta",repository="primary"}'
    wait_for(lambda: prom.query(beta), timeout=20, what="the exporter's series in Prometheus")
    assert _value(prom, beta) == 0
    assert _value(prom, 'backupctl_verify_last_status{backup_job="alpha"}') == 1
    assert _value(prom, 'backupctl_backup_last_status{backup_job="alpha"}') == 1
    assert _value(prom, 'backupctl_restore_duration_seconds{backup_job="alpha"}') is not None
    assert _value(prom, 'backupctl_restore_rto_seconds{backup_job="alpha"}') == 3600
    assert _value(prom, 'up{job="backupctl"}') == 1

    def verify_failed_alert() -> list[dict[str, str]]:
        alerts = prom.api("alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "BackupctlVerifyFailed"
                and a["state"] in ("pending", "firing")]

    alerts = wait_for(verify_failed_alert, timeout=20, what="BackupctlVerifyFailed")
    assert {a["labels"]["backup_job"] for a in alerts} == {"beta"}
    assert alerts[0]["labels"]["severity"] == "critical"
    firing = {a["labels"]["alertname"] for a in prom.api("alerts")["alerts"]}
    assert "BackupctlBackupFailed" not in firing

    # Every PromQL expression of the dashboard parses and runs against real data.
    exprs = dashboard.expressions(json.loads(DASHBOARD.read_text()))
    assert len(exprs) >= 10
    for expr in exprs:
        concrete = expr.replace("$backup_job", "alpha|beta")
        assert "$" not in concrete, expr
        prom.query(concrete)  # raises on a parse or execution error
    jobs = prom.api("label/backup_job/values", **{"match[]": "backupctl_job_info"})
    assert set(jobs) == {"alpha", "beta"}

    # A new run shows up at the next scrape: the exporter reads state per scrape.
    fixed = ws.run("verify", "alpha", "--mode", "quick")
    assert fixed.returncode == 0, fixed.stderr
    status, body = http_get(exporter.url + "/metrics")
    assert status == 200 and b'backupctl_state_up 1.0' in body

    assert exporter.stop() == 0, exporter.log.read_text()
    assert "Traceback" not in exporter.log.read_text()
