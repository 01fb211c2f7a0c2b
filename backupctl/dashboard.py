"""The Grafana dashboard, generated from code (grafanalib) into docs/grafana/backupctl.json.

Regenerate after a change: `python -m backupctl.dashboard > docs/grafana/backupctl.json`
(a test fails while the committed file is out of date). The Prometheus data source is a
dashboard variable (`datasource`), so the file imports into any Grafana unchanged.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Dashboard,
    GridPos,
    RowPanel,
    Stat,
    Table,
    TableSortByField,
    Target,
    Template,
    Templating,
    Time,
    TimeSeries,
)

UID = "backupctl"
DS = "${datasource}"
SEL = 'backup_job=~"$backup_job"'
WIDTH = 24


def _target(expr: str, legend: str = "", *, ref: str = "A", instant: bool = False,
            table: bool = False) -> Target:
    return Target(expr=expr, legendFormat=legend, refId=ref, instant=instant,
                  format="table" if table else "time_series", datasource=DS)


def _stat(title: str, expr: str, *, x: int, y: int, description: str,
          bad_above: float = 0.5) -> Stat:
    return Stat(title=title, description=description, dataSource=DS,
                targets=[_target(expr, instant=True)], gridPos=GridPos(h=4, w=6, x=x, y=y),
                reduceCalc="lastNotNull", graphMode="none", colorMode="background",
                thresholds=[{"color": "green", "value": None},
                            {"color": "red", "value": bad_above}])


def _series(title: str, targets: list[Target], *, x: int, y: int, unit: str,
            description: str, w: int = 12) -> TimeSeries:
    return TimeSeries(title=title, description=description, dataSource=DS, targets=targets,
                      gridPos=GridPos(h=8, w=w, x=x, y=y), unit=unit,
                      legendDisplayMode="table", legendPlacement="bottom")


FLEET_COLUMNS: list[tuple[str, str, str]] = [
    # (column, instant query aggregated by backup_job, unit)
    ("last backup age", "time() - max by (backup_job) "
     "(backupctl_backup_last_success_timestamp_seconds)", "s"),
    ("last backup ok", "max by (backup_job) (backupctl_backup_last_status)", "bool"),
    ("last verify ok", "min by (backup_job) (backupctl_verify_last_status)", "bool"),
    ("generations", 'max by (backup_job) (backupctl_generations{repository="primary"})', "none"),
    ("oldest copy age", "max by (backup_job) "
     "(time() - backupctl_copy_last_success_timestamp_seconds)", "s"),
    ("suspicious", "max by (backup_job) (backupctl_suspicious)", "bool"),
]


def _fleet_table(y: int) -> Table:
    refs = [chr(ord("A") + i) for i in range(len(FLEET_COLUMNS))]
    names = {f"Value #{ref}": column for ref, (column, _, _) in zip(refs, FLEET_COLUMNS,
                                                                    strict=True)}
    overrides = [{"matcher": {"id": "byName", "options": column},
                  "properties": [{"id": "unit", "value": unit}]}
                 for column, _, unit in FLEET_COLUMNS]
    return Table(
        title="All jobs", dataSource=DS, gridPos=GridPos(h=10, w=WIDTH, x=0, y=y),
        description="Every configured job: age of the newest successful backup, newest "
                    "backup and restore-test results (1 ok, 0 failed or never), generations "
                    "in the primary repository, age of the oldest copy, ransomware tripwire. "
                    "Empty cells: never happened.",
        targets=[_target(expr, ref=ref, instant=True, table=True)
                 for ref, (_, expr, _) in zip(refs, FLEET_COLUMNS, strict=True)],
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True},
                                           "renameByName": names}},
        ],
        overrides=overrides, filterable=True,
        sortBy=[TableSortByField(displayName="last backup ok", desc=False)])


def build() -> Dashboard:
    """The dashboard: fleet overview, then the selected jobs in detail."""
    y = 0
    panels: list[Any] = [RowPanel(title="Fleet overview", gridPos=GridPos(h=1, w=WIDTH, x=0,
                                                                          y=y))]
    y += 1
    panels += [
        _stat("Backups failed", "count(backupctl_backup_last_status == 0) or vector(0)",
              x=0, y=y, description="Jobs whose newest backup did not succeed (or never ran)"),
        _stat("Restore tests failed",
              "count(backupctl_verify_last_status == 0 and "
              "backupctl_verify_last_run_timestamp_seconds) or vector(0)",
              x=6, y=y, description="Job/repository pairs whose newest restore test failed"),
        _stat("Stale copies",
              "count(time() - backupctl_copy_last_success_timestamp_seconds > "
              "backupctl_copy_max_age_seconds) or vector(0)",
              x=12, y=y, description="Copies older than their max_age"),
        _stat("Suspicious (ransomware)", "sum(backupctl_suspicious) or vector(0)",
              x=18, y=y, description="Jobs with a raised ransomware tripwire"),
    ]
    y += 4
    panels.append(_fleet_table(y))
    y += 10
    panels.append(_series(
        "Verify coverage", [_target("backupctl_verify_coverage_ratio",
                                    "{{backup_job}} {{repository}}")],
        x=0, y=y, unit="percentunit", w=WIDTH,
        description="Share of each snapshot's files the newest restore test proved"))
    y += 8
    panels.append(RowPanel(title="Job detail: $backup_job",
                           gridPos=GridPos(h=1, w=WIDTH, x=0, y=y)))
    y += 1
    panels += [
        _series("Age of the newest successful backup",
                [_target(f"time() - backupctl_backup_last_success_timestamp_seconds{{{SEL}}}",
                         "{{backup_job}}")],
                x=0, y=y, unit="s", description="Alert above 26 h (BackupctlBackupMissing)"),
        _series("Restore duration vs RTO",
                [_target(f"backupctl_restore_duration_seconds{{{SEL}}}",
                         "{{backup_job}} restore from {{repository}}"),
                 _target(f"backupctl_restore_rto_seconds{{{SEL}}}", "{{backup_job}} RTO",
                         ref="B")],
                x=12, y=y, unit="s",
                description="Measured full-restore time of each restore test against the "
                            "job's recovery time objective (verify.rto)"),
    ]
    y += 8
    panels += [
        _series("Backup duration",
                [_target(f"backupctl_backup_duration_seconds{{{SEL}}}", "{{backup_job}}")],
                x=0, y=y, unit="s", description="Duration of the newest successful backup"),
        _series("Bytes added per backup",
                [_target(f"backupctl_backup_added_bytes{{{SEL}}}", "{{backup_job}}")],
                x=12, y=y, unit="bytes",
                description="A sudden jump can mean mass changes (ransomware)"),
    ]
    y += 8
    panels += [
        _series("Generations held vs expected",
                [_target(f"backupctl_generations{{{SEL}}}", "{{backup_job}} {{repository}}"),
                 _target(f"backupctl_generations_expected{{{SEL}}}",
                         "{{backup_job}} {{repository}} expected", ref="B")],
                x=0, y=y, unit="none", description="Snapshots per repository"),
        _series("Copy age vs max_age",
                [_target(f"time() - backupctl_copy_last_success_timestamp_seconds{{{SEL}}}",
                         "{{backup_job}} {{repository}}"),
                 _target(f"backupctl_copy_max_age_seconds{{{SEL}}}",
                         "{{backup_job}} {{repository}} max_age", ref="B")],
                x=12, y=y, unit="s", description="Offline/immutable copies"),
    ]
    y += 8
    panels += [
        _series("Restore test result and mismatches",
                [_target(f"backupctl_verify_last_status{{{SEL}}}",
                         "{{backup_job}} {{repository}} passed"),
                 _target(f"backupctl_verify_mismatches{{{SEL}}}",
                         "{{backup_job}} {{repository}} mismatches", ref="B"),
                 _target(f"backupctl_verify_files_checked{{{SEL}}}",
                         "{{backup_job}} {{repository}} files checked", ref="C")],
                x=0, y=y, unit="none", description="1 = data proven good"),
        _series("Immutability probe and tripwire",
                [_target(f"backupctl_immutable_probe_ok{{{SEL}}}",
                         "{{backup_job}} {{repository}} probe refused"),
                 _target(f"backupctl_suspicious{{{SEL}}}", "{{backup_job}} suspicious",
                         ref="B")],
                x=12, y=y, unit="none",
                description="probe: 1 = delete/overwrite refused as it should be"),
    ]
    templating = Templating(list=[
        Template(name="datasource", label="Data source", query="prometheus",
                 type="datasource", default=None),
        Template(name="backup_job", label="Job", dataSource=DS,
                 query="label_values(backupctl_job_info, backup_job)", type="query",
                 includeAll=True, multi=True, allValue=".*", refresh=2, sort=1,
                 default="$__all"),
    ])
    return Dashboard(title="backupctl: backups, copies and restore tests", uid=UID,
                     description="backupctl fleet overview and per-job drill-down",
                     tags=["backupctl", "backup"], timezone="browser", refresh="1m",
                     time=Time("now-7d", "now"), templating=templating,
                     panels=panels).auto_panel_ids()


def render() -> str:
    data = build().to_json_data()
    return json.dumps(data, cls=DashboardEncoder, indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard's JSON (panels, nested rows)."""
    out: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            out.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return out


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
