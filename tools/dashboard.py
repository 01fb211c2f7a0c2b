"""The Grafana dashboard, generated from code (grafanalib) into docs/grafana/backupctl.json.

A development tool (grafanalib is a development dependency; backupctl ships the JSON).
Regenerate after a change: `python -m tools.dashboard > docs/grafana/backupctl.json`
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


def _overview(y: int) -> list[Any]:
    """Row 1: counts of what needs attention, every job in a table, coverage."""
    return [
        RowPanel(title="Fleet overview", gridPos=GridPos(h=1, w=WIDTH, x=0, y=y)),
        _stat("Backups failed", "count(backupctl_backup_last_status == 0) or vector(0)",
              x=0, y=y + 1, description="Jobs whose newest backup did not succeed (or never "
              "ran)"),
        _stat("Restore tests failed",
              "count(backupctl_verify_last_status == 0 and "
              "backupctl_verify_last_run_timestamp_seconds) or vector(0)",
              x=6, y=y + 1, description="Job/repository pairs whose newest restore test "
              "failed"),
        _stat("Stale copies",
              "count(time() - backupctl_copy_last_success_timestamp_seconds > "
              "backupctl_copy_max_age_seconds) or vector(0)",
              x=12, y=y + 1, description="Copies older than their max_age"),
        _stat("Suspicious (ransomware)", "sum(backupctl_suspicious) or vector(0)",
              x=18, y=y + 1, description="Jobs with a raised ransomware tripwire"),
        _fleet_table(y + 5),
        _series("Verify coverage", [_target("backupctl_verify_coverage_ratio",
                                            "{{backup_job}} {{repository}}")],
                x=0, y=y + 15, unit="percentunit", w=WIDTH,
                description="Share of each snapshot's files the newest restore test proved"),
    ]


# The job detail row: pairs of (title, [(expr, legend)], unit, description), two per line.
DETAIL: list[tuple[str, list[tuple[str, str]], str, str]] = [
    ("Age of the newest successful backup",
     [(f"time() - backupctl_backup_last_success_timestamp_seconds{{{SEL}}}", "{{backup_job}}")],
     "s", "Alert above 26 h (BackupctlBackupMissing)"),
    ("Restore duration vs RTO",
     [(f"backupctl_restore_duration_seconds{{{SEL}}}", "{{backup_job}} restore from "
       "{{repository}}"), (f"backupctl_restore_rto_seconds{{{SEL}}}", "{{backup_job}} RTO")],
     "s", "Measured full-restore time of each restore test against the job's recovery time "
     "objective (verify.rto)"),
    ("Backup duration", [(f"backupctl_backup_duration_seconds{{{SEL}}}", "{{backup_job}}")],
     "s", "Duration of the newest successful backup"),
    ("Bytes added per backup", [(f"backupctl_backup_added_bytes{{{SEL}}}", "{{backup_job}}")],
     "bytes", "A sudden jump can mean mass changes (ransomware)"),
    ("Generations held vs expected",
     [(f"backupctl_generations{{{SEL}}}", "{{backup_job}} {{repository}}"),
      (f"backupctl_generations_expected{{{SEL}}}", "{{backup_job}} {{repository}} expected")],
     "none", "Snapshots per repository"),
    ("Copy age vs max_age",
     [(f"time() - backupctl_copy_last_success_timestamp_seconds{{{SEL}}}",
       "{{backup_job}} {{repository}}"),
      (f"backupctl_copy_max_age_seconds{{{SEL}}}", "{{backup_job}} {{repository}} max_age")],
     "s", "Offline/immutable copies"),
    ("Restore test result and mismatches",
     [(f"backupctl_verify_last_status{{{SEL}}}", "{{backup_job}} {{repository}} passed"),
      (f"backupctl_verify_mismatches{{{SEL}}}", "{{backup_job}} {{repository}} mismatches"),
      (f"backupctl_verify_files_checked{{{SEL}}}",
       "{{backup_job}} {{repository}} files checked")],
     "none", "1 = data proven good"),
    ("Immutability probe and tripwire",
     [(f"backupctl_immutable_probe_ok{{{SEL}}}", "{{backup_job}} {{repository}} probe refused"),
      (f"backupctl_suspicious{{{SEL}}}", "{{backup_job}} suspicious")],
     "none", "probe: 1 = delete/overwrite refused as it should be"),
    ("Files not yet proven",
     [(f"backupctl_files_unproven{{{SEL}}}", "{{backup_job}} unproven"),
      (f"backupctl_proof_files{{{SEL}}}", "{{backup_job}} files")],
     "none", "Files of the newest snapshot no restore test has restored and matched yet "
     "(verify.prove_within); new and changed files wait here for their first proof"),
    ("Proof age vs prove_within",
     [(f"backupctl_proof_age_seconds{{{SEL}}}", "{{backup_job}} longest wait for a proof"),
      (f"backupctl_proof_within_seconds{{{SEL}}}", "{{backup_job}} prove_within")],
     "s", "Alert when the longest wait passes the window (BackupctlProofStale)"),
]


def _detail(y: int) -> list[Any]:
    """Row 2: the selected jobs, two time series per line."""
    panels: list[Any] = [RowPanel(title="Job detail: $backup_job",
                                  gridPos=GridPos(h=1, w=WIDTH, x=0, y=y))]
    for i, (title, queries, unit, description) in enumerate(DETAIL):
        targets = [_target(expr, legend, ref=chr(ord("A") + n))
                   for n, (expr, legend) in enumerate(queries)]
        panels.append(_series(title, targets, x=12 * (i % 2), y=y + 1 + 8 * (i // 2),
                              unit=unit, description=description))
    return panels


def build() -> Dashboard:
    """The dashboard: fleet overview, then the selected jobs in detail."""
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
                     panels=[*_overview(0), *_detail(23)]).auto_panel_ids()


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
