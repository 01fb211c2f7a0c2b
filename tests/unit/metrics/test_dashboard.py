"""The Grafana dashboard is generated from code and the committed JSON is up to date."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from backupctl.metrics.families import ALL
from tools import dashboard

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "grafana" / "backupctl.json"


def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(COMMITTED.read_text())
    return data


def test_committed_dashboard_is_generated_from_code() -> None:
    assert COMMITTED.read_text() == dashboard.render(), (
        "docs/grafana/backupctl.json is stale: run "
        "python -m tools.dashboard > docs/grafana/backupctl.json")


def test_datasource_is_a_variable_used_by_every_panel_and_target() -> None:
    data = _data()
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in data["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == "${datasource}", panel["title"]
        assert all(t["datasource"] == "${datasource}" for t in panel["targets"])


def test_job_variable_drives_the_drill_down() -> None:
    data = _data()
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert "backupctl_job_info" in variables["backup_job"]["query"]
    detail = [p for p in data["panels"] if p["gridPos"]["y"] > _row_y(data, "Job detail")]
    assert detail
    for panel in detail:
        assert all('backup_job=~"$backup_job"' in t["expr"] for t in panel["targets"]), \
            panel["title"]


def _row_y(data: dict[str, Any], prefix: str) -> int:
    return int(next(p["gridPos"]["y"] for p in data["panels"]
                    if p["type"] == "row" and p["title"].startswith(prefix)))


def test_fleet_overview_and_required_views_are_present() -> None:
    data = _data()
    titles = {p["title"] for p in data["panels"]}
    assert {"All jobs", "Restore duration vs RTO", "Verify coverage"} <= titles
    table = next(p for p in data["panels"] if p["title"] == "All jobs")
    exprs = " ".join(t["expr"] for t in table["targets"])
    for metric in ("backupctl_backup_last_success_timestamp_seconds",
                   "backupctl_verify_last_status", "backupctl_generations",
                   "backupctl_copy_last_success_timestamp_seconds", "backupctl_suspicious"):
        assert metric in exprs
    rto = next(p for p in data["panels"] if p["title"] == "Restore duration vs RTO")
    assert {"backupctl_restore_duration_seconds", "backupctl_restore_rto_seconds"} <= {
        re.findall(r"backupctl_[a-z_]+", t["expr"])[0] for t in rto["targets"]}


def test_dashboard_uses_only_exposed_metrics() -> None:
    exposed = {spec.name for spec in ALL}
    used = {m for e in dashboard.expressions(_data()) for m in re.findall(r"backupctl_[a-z_]+", e)}
    assert used and used <= exposed, sorted(used - exposed)


def test_proof_freshness_panels_show_unproven_files_and_the_wait_against_the_window() -> None:
    panels = {p["title"]: p for p in _data()["panels"]}
    exprs = {title: " ".join(t["expr"] for t in panels[title]["targets"])
             for title in ("Files not yet proven", "Proof age vs prove_within")}
    assert "backupctl_files_unproven" in exprs["Files not yet proven"]
    assert {"backupctl_proof_age_seconds", "backupctl_proof_within_seconds"} <= set(
        re.findall(r"backupctl_[a-z_]+", exprs["Proof age vs prove_within"]))
