"""`backupctl schedule` against real systemd-analyze (verify, calendar) and a cron evaluator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Workspace, need

ROOT = Path(__file__).resolve().parents[3]
BACKUPCTL_BIN = str(Path(sys.executable).parent / "backupctl")
MISSING_BINARY = re.compile(r"Command /usr/local/bin/backupctl is not executable: "
                            r"No such file or directory$")


def _verify(units: list[str], *, unit_dir: Path) -> list[str]:
    """systemd-analyze verify: exit 0 even on unknown keys, so every output line counts."""
    result = subprocess.run(
        [need("systemd-analyze"), "verify", *units], capture_output=True, text=True,
        timeout=120, cwd=unit_dir, check=False,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{unit_dir}:"})
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def _jobs(ws: Workspace) -> None:
    ws.job("emr-db", schedule={"backup": "*-*-* 02:00:00", "copy": "*-*-* 03:30",
                               "verify": "Sun *-*-* 04:00:00"},
           copies=[{"name": "usb", "kind": "offline", "url": str(ws.root / "usb" / "emr"),
                    "password_file": str(ws.password_file()), "max_age": "7d"}])
    ws.job("pacs", schedule={"backup": "Mon..Fri 22:15", "verify": "*-*-01,15 05:00:00"})


def test_install_dry_run_shows_each_jobs_on_calendar_and_writes_nothing(
        workspace: Workspace, tmp_path: Path) -> None:
    _jobs(workspace)
    units = tmp_path / "units"
    result = workspace.run("schedule", "install", "--dry-run", "--unit-dir", str(units))
    assert result.returncode == 0, result.stderr
    calendars = dict(re.findall(
        r"# --- \S+/(backupctl-\w+@[\w-]+)\.timer\.d/backupctl-schedule\.conf\n"
        r"(?:#.*\n)*\[Timer\]\n(?:#.*\n)*OnCalendar=\nOnCalendar=(.+)\n", result.stdout))
    assert calendars == {"backupctl-backup@emr-db": "*-*-* 02:00:00",
                         "backupctl-copy@emr-db": "*-*-* 03:30",
                         "backupctl-verify@emr-db": "Sun *-*-* 04:00:00",
                         "backupctl-backup@pacs": "Mon..Fri 22:15",
                         "backupctl-verify@pacs": "*-*-01,15 05:00:00"}
    assert "backupctl-copy@pacs" not in result.stdout  # pacs has no copies
    assert not units.exists()


def test_installed_units_pass_systemd_analyze_verify(workspace: Workspace,
                                                     tmp_path: Path) -> None:
    _jobs(workspace)
    units = tmp_path / "units"
    result = workspace.run("schedule", "install", "--unit-dir", str(units),
                           "--bin", BACKUPCTL_BIN)
    assert result.returncode == 0, result.stderr
    assert "systemctl enable --now backupctl-backup@emr-db.timer" in result.stderr
    instances = [f"backupctl-{a}@{j}.{kind}" for j, actions in
                 (("emr-db", ("backup", "copy", "verify")), ("pacs", ("backup", "verify")))
                 for a in actions for kind in ("timer", "service")]
    notify = ["backupctl-notify@backupctl-backup@emr-db.service.service",
              "backupctl-notify-check.service", "backupctl-notify-check.timer"]
    assert _verify([*instances, *notify], unit_dir=units) == []
    dropin = (units / "backupctl-verify@pacs.timer.d" / "backupctl-schedule.conf").read_text()
    assert dropin.endswith("OnCalendar=\nOnCalendar=*-*-01,15 05:00:00\n")

    show = workspace.run("schedule", "show", "--unit-dir", str(units))
    assert show.returncode == 0, show.stderr
    assert show.stdout.count("(installed)") == 5


def test_several_orchestrators_get_due_runs_and_a_delay_per_machine(
        workspace: Workspace, tmp_path: Path) -> None:
    """database_url on PostgreSQL: every service runs with --due, every timer has the
    per-machine delay drop-in; systemd accepts all of it. Back on SQLite, both go away."""
    _jobs(workspace)
    workspace.write_config(database_url="postgresql://backupctl@db01/backupctl")
    units = tmp_path / "units"
    result = workspace.run("schedule", "install", "--unit-dir", str(units),
                           "--bin", BACKUPCTL_BIN)
    assert result.returncode == 0, result.stderr
    instances = [f"backupctl-{a}@{j}.{kind}" for j, actions in
                 (("emr-db", ("backup", "copy", "verify")), ("pacs", ("backup", "verify")))
                 for a in actions for kind in ("timer", "service")]
    assert _verify(instances, unit_dir=units) == []
    service = (units / "backupctl-copy@emr-db.service.d" / "backupctl-paths.conf").read_text()
    assert service.endswith(f"ExecStart=\nExecStart={BACKUPCTL_BIN} copy --due %i\n")
    delay = (units / "backupctl-copy@emr-db.timer.d" / "backupctl-orchestrators.conf")
    assert delay.read_text().endswith("[Timer]\nRandomizedDelaySec=10min\n"
                                      "FixedRandomDelay=true\n")
    cron = workspace.run("schedule", "cron", "--bin", BACKUPCTL_BIN)
    assert "backup --due emr-db" in cron.stdout, cron.stderr

    workspace.write_config()  # one orchestrator again (SQLite)
    again = workspace.run("schedule", "install", "--unit-dir", str(units),
                          "--bin", BACKUPCTL_BIN)
    assert again.returncode == 0, again.stderr
    assert not delay.exists() and "--due" not in delay.parent.parent.joinpath(
        "backupctl-copy@emr-db.service.d", "backupctl-paths.conf").read_text()
    assert "disable" not in again.stderr  # every timer is still scheduled


def test_a_broken_calendar_in_a_dropin_is_caught_by_verify(workspace: Workspace,
                                                           tmp_path: Path) -> None:
    """The verify helper itself can fail: systemd rejects what it cannot parse."""
    _jobs(workspace)
    units = tmp_path / "units"
    assert workspace.run("schedule", "install", "--unit-dir", str(units), "--bin",
                         BACKUPCTL_BIN).returncode == 0
    dropin = units / "backupctl-backup@pacs.timer.d" / "backupctl-schedule.conf"
    dropin.write_text(dropin.read_text().replace("22:15", "25:15"))
    assert any("calendar" in line for line in _verify(["backupctl-backup@pacs.timer"],
                                                      unit_dir=units))


def test_shipped_units_pass_systemd_analyze_verify() -> None:
    shipped = sorted(p.name for p in (ROOT / "systemd").iterdir())
    assert {"backupctl-backup@.service", "backupctl-backup@.timer", "backupctl-copy@.timer",
            "backupctl-verify@.timer", "backupctl-notify@.service"} <= set(shipped)
    lines = _verify([f"./{name}" for name in shipped], unit_dir=ROOT / "systemd")
    assert [line for line in lines if not MISSING_BINARY.search(line)] == []


def test_reinstall_removes_dropins_of_a_removed_job(workspace: Workspace,
                                                   tmp_path: Path) -> None:
    _jobs(workspace)
    units = tmp_path / "units"
    assert workspace.run("schedule", "install", "--unit-dir", str(units)).returncode == 0
    (workspace.jobs_dir / "pacs.yaml").unlink()
    result = workspace.run("schedule", "install", "--unit-dir", str(units))
    assert result.returncode == 0, result.stderr
    assert not (units / "backupctl-backup@pacs.timer.d").exists()
    assert "systemctl disable --now backupctl-backup@pacs.timer backupctl-verify@pacs.timer" \
        in result.stderr
    assert (units / "backupctl-backup@emr-db.timer.d" / "backupctl-schedule.conf").exists()


def _systemd_elapses(expr: str, base: datetime, count: int) -> list[datetime]:
    out = subprocess.run(
        [need("systemd-analyze"), "calendar", f"--iterations={count}",
         f"--base-time={base:%Y-%m-%d %H:%M:%S}", "--", expr], capture_output=True,
        text=True, check=True, env={**os.environ, "TZ": "UTC"}).stdout
    stamps = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", out)
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in stamps]


def test_cron_lines_are_valid_and_fire_when_the_timers_would(workspace: Workspace) -> None:
    # cronsim (dev dependency, pyproject [dev]) is a strict, independent cron evaluator.
    cron_sim = pytest.importorskip("cronsim").CronSim
    _jobs(workspace)
    workspace.job("lab", schedule={"backup": "*:0/15", "verify": "Fri..Sun 01:00"})
    result = workspace.run("schedule", "cron", "--bin", "/opt/backupctl/bin/backupctl")
    assert result.returncode == 0, result.stderr
    lines = [ln for ln in result.stdout.splitlines()
             if ln and not ln.startswith("#") and "=" not in ln.split()[0]]
    assert len(lines) == 7  # emr-db ×3, pacs ×2, lab ×2
    base = datetime(2026, 1, 1, 0, 0, 0)
    for line in lines:
        fields = line.split()
        cron, user, command = " ".join(fields[:5]), fields[5], fields[6:]
        assert user == "root"
        assert command[:3] == ["/opt/backupctl/bin/backupctl", "-c",
                               str(workspace.config.resolve())]
        job, action = command[4], command[3]
        calendar = _calendar(workspace, job, action)
        sim = cron_sim(cron, base)  # raises on an invalid cron expression
        assert [next(sim) for _ in range(12)] == _systemd_elapses(calendar, base, 12), line


def _calendar(ws: Workspace, job: str, action: str) -> str:
    text = (ws.jobs_dir / f"{job}.yaml").read_text()
    section = text.split("schedule:", 1)[1]
    match = re.search(rf"^\s+{action}: (.+)$", section, re.MULTILINE)
    assert match, (job, action)
    return match.group(1).strip().strip("'\"")


def test_cron_refuses_a_schedule_it_cannot_express_and_prints_no_partial_crontab(
        workspace: Workspace) -> None:
    _jobs(workspace)
    workspace.job("odd", schedule={"backup": "*-*-* 02:00:30", "verify": "Sun 04:00"})
    result = workspace.run("schedule", "cron")
    assert result.returncode == 2
    assert result.stdout == ""
    assert re.search(r"odd\.yaml:\d+: schedule\.backup: cron cannot express .*whole minutes",
                     result.stderr), result.stderr


def test_verify_full_gets_its_own_timer_in_units_show_and_cron(
        workspace: Workspace, tmp_path: Path) -> None:
    """schedule.verify_full (issue 29): a timer running `verify --mode full`, accepted by
    systemd, shown by `schedule show`, in the crontab; with several orchestrators --due."""
    workspace.job("emr-db", schedule={"backup": "*-*-* 02:00:00", "verify": "Sun 04:00",
                                      "verify_full": "*-*-01 05:00:00"})
    units = tmp_path / "units"
    result = workspace.run("schedule", "install", "--unit-dir", str(units),
                           "--bin", BACKUPCTL_BIN)
    assert result.returncode == 0, result.stderr
    assert "backupctl-verify-full@emr-db.timer" in result.stderr  # in the enable command
    assert _verify(["backupctl-verify-full@emr-db.timer",
                    "backupctl-verify-full@emr-db.service"], unit_dir=units) == []
    service = (units / "backupctl-verify-full@.service").read_text()
    assert f"ExecStart={BACKUPCTL_BIN} verify --mode full %i" in service
    dropin = units / "backupctl-verify-full@emr-db.timer.d" / "backupctl-schedule.conf"
    assert dropin.read_text().endswith("OnCalendar=\nOnCalendar=*-*-01 05:00:00\n")

    show = workspace.run("schedule", "show", "--unit-dir", str(units))
    assert re.search(r"emr-db +verify-full +OnCalendar=\*-\*-01 05:00:00 .*"
                     r"backupctl-verify-full@emr-db\.timer \(installed\)", show.stdout), \
        show.stdout
    cron = workspace.run("schedule", "cron", "--bin", BACKUPCTL_BIN, "--no-user")
    assert f"0 5 1 * * {BACKUPCTL_BIN} -c {workspace.config.resolve()} verify --mode full " \
        "emr-db" in cron.stdout, cron.stderr

    workspace.write_config(database_url="postgresql://backupctl@db01/backupctl")
    assert workspace.run("schedule", "install", "--unit-dir", str(units), "--bin",
                         BACKUPCTL_BIN).returncode == 0
    shared = units / "backupctl-verify-full@emr-db.service.d" / "backupctl-paths.conf"
    assert shared.read_text().endswith(
        f"ExecStart=\nExecStart={BACKUPCTL_BIN} verify --mode full --due %i\n")
    assert "verify --mode full --due emr-db" in workspace.run(
        "schedule", "cron", "--bin", BACKUPCTL_BIN).stdout


def test_dry_run_prints_the_systemctl_commands_and_units_point_at_real_docs(
        workspace: Workspace, tmp_path: Path) -> None:
    """operations.md promises the systemctl lines; Documentation= names a file that exists
    (issue 29: /usr/share/doc/backupctl was never created by pip)."""
    _jobs(workspace)
    units = tmp_path / "units"
    (units / "backupctl-backup@gone.timer.d").mkdir(parents=True)
    (units / "backupctl-backup@gone.timer.d" / "backupctl-schedule.conf").write_text(
        "# Generated by `backupctl schedule install` from x; do not edit.\n")
    result = workspace.run("schedule", "install", "--dry-run", "--unit-dir", str(units))
    assert result.returncode == 0, result.stderr
    tail = result.stdout.split("# --- then run")[1]
    assert "#   systemctl disable --now backupctl-backup@gone.timer" in tail
    assert "#   systemctl daemon-reload" in tail
    assert "#   systemctl enable --now backupctl-backup@emr-db.timer" in tail
    docs = set(re.findall(r"^Documentation=file://(\S+)$", result.stdout, re.M))
    assert docs and all(Path(d).is_file() for d in docs), docs


def test_show_gives_the_next_run_as_the_timer_fires_in_the_machines_zone(
        workspace: Workspace, tmp_path: Path) -> None:
    """systemd reads OnCalendar in the machine's zone: 02:00 on a Tokyo machine is 17:00 UTC
    the day before, and the text shows it on the configured zone's clock."""
    workspace.job("emr-db", schedule={"backup": "*-*-* 02:00:00"})
    tokyo = {"TZ": "Asia/Tokyo"}
    shown = workspace.run("schedule", "show", "--json", "--unit-dir", str(tmp_path), env=tokyo)
    assert shown.returncode == 0, shown.stderr
    backup = next(e for e in json.loads(shown.stdout)["entries"] if e["action"] == "backup")
    assert datetime.fromisoformat(backup["next"]).astimezone(UTC).hour == 17, backup
    text = workspace.run("schedule", "show", "--unit-dir", str(tmp_path), env=tokyo)
    assert re.search(r"emr-db +backup .*next \d{4}-\d\d-\d\d 02:00 \(Asia/Tokyo, UTC\+09:00\)",
                     text.stdout), text.stdout
