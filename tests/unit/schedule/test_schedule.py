"""OnCalendar → cron conversion, unit-file quoting, drop-ins and the shipped template units."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from backupctl import schedule
from backupctl.config.validate import Config, load_config
from tests import yaml_helpers

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("expr", "cron"), [
    ("*-*-* 02:00:00", "0 2 * * *"),
    ("Sun *-*-* 04:00:00", "0 4 * * 0"),
    ("Mon..Fri 02:30", "30 2 * * 1-5"),
    ("Sat,Sun 03:30", "30 3 * * 0,6"),
    ("Fri..Sun 01:00", "0 1 * * 0,5,6"),
    ("Mon,Wed..Thu *-*-* 22:15:00", "15 22 * * 1,3,4"),
    ("*:0/15", "*/15 * * * *"),
    ("*-*-* 0/6:05", "5 */6 * * *"),
    ("*-*-* *:05/15:00", "5-50/15 * * * *"),
    ("*-*-* 5/15:00", "0 5,20 * * *"),
    ("*-*-* 08..18:00", "0 8-18 * * *"),
    ("*-*-1,15 4:00", "0 4 1,15 * *"),
    ("*-1,7-1 00:00", "0 0 1 1,7 *"),
    ("hourly", "0 * * * *"),
    ("daily", "0 0 * * *"),
    ("weekly", "0 0 * * 1"),
    ("monthly", "0 0 1 * *"),
    ("quarterly", "0 0 1 */3 *"),
    ("yearly", "0 0 1 1 *"),
    ("minutely", "* * * * *"),
    ("Tue", "0 0 * * 2"),
])
def test_common_forms_convert_to_cron(expr: str, cron: str) -> None:
    assert schedule.to_cron(expr) == cron


@pytest.mark.parametrize(("expr", "why"), [
    ("*-*-* 02:00:30", "whole minutes"),
    ("2026-*-* 01:00:00", "no year field"),
    ("*-*-* 02:00:00 Asia/Tokyo", "time zones"),
    ("daily UTC", "time zones"),
    ("*-*~01", "last day"),
    ("Mon *-*-01..07 00:00:00", "BOTH"),
    ("*-*-* 25:00:00", "out of range"),
    ("*-*-* 02:00:00.5", "whole minutes"),
])
def test_forms_cron_cannot_express_are_refused_with_the_reason(expr: str, why: str) -> None:
    with pytest.raises(schedule.CronError, match=why):
        schedule.to_cron(expr)


def test_unit_values_are_quoted_and_specifiers_escaped() -> None:
    assert schedule.unit_quote("/srv/restic/emr") == "/srv/restic/emr"
    assert schedule.unit_quote("-/mnt/usb disk/emr") == '"-/mnt/usb disk/emr"'
    assert schedule.unit_quote("/srv/100%") == "/srv/100%%"
    assert schedule.unit_quote('/a"b') == '"/a\\"b"'


def test_shipped_units_are_the_ones_install_writes() -> None:
    shipped = {p.name: p.read_text(encoding="utf-8")
               for p in (ROOT / "systemd").iterdir()
               if p.name != "backupctl-exporter.service"}
    assert shipped == schedule.template_units()


def test_every_service_tolerates_a_busy_job_and_every_timer_catches_up() -> None:
    units = schedule.template_units()
    for action in schedule.ACTIONS:
        service = units[f"backupctl-{action}@.service"]
        timer = units[f"backupctl-{action}@.timer"]
        assert "SuccessExitStatus=75" in service
        assert "OnFailure=backupctl-notify@%n.service" in service
        assert "ProtectSystem=strict" in service and "NoNewPrivileges=yes" in service
        command = " ".join(schedule.COMMANDS[action])
        assert f"ExecStart={schedule.DEFAULT_BIN} {command} %i" in service
        assert "Persistent=true" in timer and "RandomizedDelaySec=" in timer


def _config(tmp_path: Path, schedules: dict[str, dict[str, str]],
            copies: bool = True) -> Config:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    secret = tmp_path / "pw"
    secret.write_text("x\n")
    for name, sched in schedules.items():
        data: dict[str, Any] = {"job": name, "host": {"address": "local"},
                "source": {"paths": [f"/data/{name}"]},
                "repository": {"url": f"/srv/restic/{name}", "password_file": str(secret)},
                "generations": {"last": 3}, "schedule": sched}
        if copies:
            data["copies"] = [{"name": "usb", "kind": "offline", "url": f"/mnt/usb/{name}",
                               "password_file": str(secret), "max_age": "7d"}]
        (jobs / f"{name}.yaml").write_text(yaml_helpers.dump(data))
    config = tmp_path / "backupctl.yaml"
    config.write_text(yaml_helpers.dump({
        "jobs_dir": str(jobs), "state_dir": str(tmp_path / "state"),
        "scratch_dir": str(tmp_path / "scratch"), "known_hosts": str(tmp_path / "kh")}))
    return load_config(config)


def test_entries_follow_each_jobs_schedule(tmp_path: Path) -> None:
    config = _config(tmp_path, {
        "a": {"backup": "*-*-* 02:00:00", "verify": "Sun 04:00"},
        "b": {"backup": "hourly", "copy": "*-*-* 03:00", "verify": "daily"}})
    got = [(e.job, e.action, e.calendar) for e in schedule.entries(config)]
    assert got == [("a", "backup", "*-*-* 02:00:00"), ("a", "verify", "Sun 04:00"),
                   ("b", "backup", "hourly"), ("b", "copy", "*-*-* 03:00"),
                   ("b", "verify", "daily")]


def test_copy_is_not_scheduled_for_a_job_without_copies(tmp_path: Path) -> None:
    config = _config(tmp_path, {"a": {"backup": "daily", "copy": "daily", "verify": "daily"}},
                     copies=False)
    assert [e.action for e in schedule.entries(config)] == ["backup", "verify"]


def test_timer_dropin_replaces_the_fallback_calendar(tmp_path: Path) -> None:
    entry = schedule.Entry("emr-db", "backup", "*-*-* 02:00:00")
    text = schedule.timer_dropin(entry, source=tmp_path / "emr-db.yaml")
    assert text.startswith(schedule.MARKER)
    assert text.splitlines()[-2:] == ["OnCalendar=", "OnCalendar=*-*-* 02:00:00"]


def test_service_may_write_state_scratch_and_the_jobs_local_repositories(
        tmp_path: Path) -> None:
    config = _config(tmp_path, {"a": {"backup": "daily", "copy": "daily", "verify": "daily"}})
    job = config.job("a")
    backup = schedule.writable_paths(config, job, "backup")
    copy = schedule.writable_paths(config, job, "copy")
    assert backup == [str(tmp_path / "state"), str(tmp_path / "scratch"), "/srv/restic/a",
                      "/data/a"]
    assert copy == [str(tmp_path / "state"), str(tmp_path / "scratch"), "/srv/restic/a",
                    "/mnt/usb/a"]
    text = schedule.service_dropin(config, schedule.Entry("a", "copy", "daily"))
    assert "ReadWritePaths=-" + str(tmp_path / "state") in text
    assert f"Environment=BACKUPCTL_CONFIG={config.path.resolve()}" in text


def test_a_local_job_with_only_local_url_may_write_it(tmp_path: Path) -> None:
    config = _config(tmp_path, {"a": {"backup": "daily", "verify": "daily"}}, copies=False)
    path = tmp_path / "jobs" / "a.yaml"
    data = YAML(typ="safe").load(path.read_text())
    data["repository"]["local_url"] = data["repository"].pop("url")
    path.write_text(yaml_helpers.dump(data))
    config = load_config(config.path)
    assert schedule.writable_paths(config, config.job("a"), "backup") == [
        str(tmp_path / "state"), str(tmp_path / "scratch"), "/srv/restic/a", "/data/a"]


def test_stale_dropins_of_removed_jobs_are_found_and_removed(tmp_path: Path) -> None:
    config = _config(tmp_path, {"a": {"backup": "daily", "verify": "daily"}})
    units = tmp_path / "units"
    old = units / "backupctl-backup@gone.timer.d" / schedule.SCHEDULE_DROPIN
    foreign = units / "backupctl-backup@mine.timer.d" / "local.conf"
    admin = units / "backupctl-verify@gone.timer.d" / schedule.SCHEDULE_DROPIN
    for path, text in ((old, schedule.MARKER + "\n"), (foreign, "[Timer]\n"),
                       (admin, "# the admin's own file\n")):
        path.parent.mkdir(parents=True)
        path.write_text(text)
    found = schedule.stale(config, unit_dir=units)
    assert found == [old]
    assert schedule.remove_stale(found) == ["backupctl-backup@gone.timer"]
    assert not old.parent.exists() and foreign.exists() and admin.exists()


def test_cron_commands_are_quoted_and_escape_percent() -> None:
    entry = schedule.Entry("emr-db", "backup", "daily")
    command = schedule.cron_command(entry, bin_path="/opt/back up/backupctl",
                                    config_path=Path("/etc/b/100%.yaml"))
    # cron turns an unescaped % into a newline and drops the backslash of \%.
    assert command == "'/opt/back up/backupctl' -c /etc/b/100\\%.yaml backup emr-db"


def test_failure_unit_calls_backupctl_and_the_stale_check_runs_hourly() -> None:
    units = schedule.template_units(bin_path="/opt/b/backupctl")
    notify = units["backupctl-notify@.service"]
    assert "ExecStart=/opt/b/backupctl notify unit-failed %i" in notify
    assert "ExecStart=/opt/b/backupctl notify check" in units["backupctl-notify-check.service"]
    assert "OnCalendar=hourly" in units["backupctl-notify-check.timer"]


def test_install_points_the_notification_units_at_the_configuration(tmp_path: Path) -> None:
    config = _config(tmp_path, {"a": {"backup": "daily", "verify": "weekly"}})
    files = {f.path.relative_to(tmp_path / "u").as_posix(): f.text
             for f in schedule.plan(config, unit_dir=tmp_path / "u")}
    dropin = files["backupctl-notify@.service.d/backupctl-paths.conf"]
    assert f"Environment=BACKUPCTL_CONFIG={config.path.resolve()}" in dropin
    assert "backupctl-notify-check.service.d/backupctl-paths.conf" in files


def test_with_notify_channels_the_stale_check_is_enabled_and_in_the_crontab(
        tmp_path: Path) -> None:
    (tmp_path / "quiet").mkdir()
    quiet = _config(tmp_path / "quiet", {"a": {"backup": "daily", "verify": "weekly"}})
    assert "backupctl-notify-check.timer" not in str(schedule.enable_commands(quiet))
    assert not any("notify check" in line for line in schedule.crontab(
        quiet, bin_path="/b", user="root", runner=None)[0])
    root = tmp_path / "told"
    root.mkdir()
    _config(root, {"a": {"backup": "daily", "verify": "weekly"}})
    apprise = root / "apprise"
    apprise.write_text("json://127.0.0.1/x\n")
    apprise.chmod(0o600)
    with (root / "backupctl.yaml").open("a") as handle:
        handle.write(yaml_helpers.dump({"notify": {"channels": [
            {"name": "chat", "apprise_file": str(apprise)}]}}))
    told = load_config(root / "backupctl.yaml")
    assert schedule.enable_commands(told)[-1][-1] == "backupctl-notify-check.timer"
    lines = schedule.crontab(told, bin_path="/b", user="root", runner=None)[0]
    assert lines[-1] == f"7 * * * * root /b -c {(root / 'backupctl.yaml').resolve()} notify check"


def test_units_document_the_docs_pip_installs_beside_the_venv_install_md_creates() -> None:
    """Documentation= points where `pip install` puts docs/*.md (pyproject data-files) in
    the venv install.md creates (/opt/backupctl); `schedule install` writes the real place."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["data-files"] == {"share/doc/backupctl": ["docs/*.md"]}
    assert "create a venv in `/opt/backupctl`" in (ROOT / "docs" / "install.md").read_text()
    assert schedule.DEFAULT_DOCS == "/opt/backupctl/share/doc/backupctl"
    units = schedule.template_units(docs="/opt/my docs/100%")
    assert "Documentation=file:///opt/my%%20docs/100%%25/operations.md" in \
        units["backupctl-backup@.service"]
    assert (Path(schedule.installed_docs()) / "operations.md").is_file()


def test_verify_full_is_scheduled_only_when_the_job_asks(tmp_path: Path) -> None:
    config = _config(tmp_path, {
        "a": {"backup": "daily", "verify": "weekly", "verify_full": "monthly"},
        "b": {"backup": "daily", "verify": "weekly"}}, copies=False)
    got = [(e.job, e.action, e.argv) for e in schedule.entries(config)]
    assert got == [("a", "backup", ("backup",)), ("a", "verify", ("verify",)),
                   ("a", "verify-full", ("verify", "--mode", "full")),
                   ("b", "backup", ("backup",)), ("b", "verify", ("verify",))]
    assert [e.timer for e in schedule.entries(config)][2] == "backupctl-verify-full@a.timer"


def test_units_and_crontab_record_their_runs_as_the_scheduler(tmp_path: Path) -> None:
    units = schedule.template_units()
    for action in schedule.ACTIONS:
        assert "Environment=BACKUPCTL_OPERATOR=scheduler" in units[f"backupctl-{action}@.service"]
    config = _config(tmp_path, {"a": {"backup": "daily", "verify": "weekly"}})
    assert "BACKUPCTL_OPERATOR=scheduler" in schedule.crontab(
        config, bin_path="/b", user="root", runner=None)[0]
