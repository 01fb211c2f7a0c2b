"""Metrics built from the state database (issue #6): values, absences, contract, exposition."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from backupctl.metrics import exposition, registry, render
from backupctl.metrics.families import ALL
from tests.unit.metrics.conftest import Fleet, make_job, ts

# SPEC §5: these names are a contract with dashboards and alert rules.
SPEC_METRICS = [
    "backupctl_backup_last_success_timestamp_seconds",
    "backupctl_backup_last_status",
    "backupctl_backup_duration_seconds",
    "backupctl_backup_added_bytes",
    "backupctl_generations",
    "backupctl_copy_last_success_timestamp_seconds",
    "backupctl_immutable_probe_ok",
    "backupctl_verify_last_success_timestamp_seconds",
    "backupctl_verify_last_status",
    "backupctl_verify_files_checked",
    "backupctl_verify_mismatches",
    "backupctl_restore_duration_seconds",
    "backupctl_suspicious",
]
ISSUE_METRICS = ["backupctl_info", "backupctl_job_info", "backupctl_verify_coverage_ratio",
                 "backupctl_copy_age_seconds", "backupctl_state_up",
                 "backupctl_copy_max_age_seconds", "backupctl_generations_expected",
                 "backupctl_restore_rto_seconds"]


def _registry(fleet: Fleet) -> CollectorRegistry:
    return registry(fleet.source())[0]


def value(reg: CollectorRegistry, name: str, **labels: str) -> float | None:
    return reg.get_sample_value(name, labels)


@pytest.mark.parametrize("name", SPEC_METRICS + ISSUE_METRICS)
def test_contract_metric_is_exposed_with_a_sample(fleet: Fleet, name: str) -> None:
    text = exposition(fleet.source())[0].decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name]
    assert samples, f"{name} has no sample"
    for sample in samples:
        if name not in ("backupctl_info", "backupctl_state_up"):
            assert "backup_job" in sample.labels and "job" not in sample.labels


def test_every_family_has_help_and_a_unit_or_a_count_name(fleet: Fleet) -> None:
    text = exposition(fleet.source())[0].decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {s.name for s in ALL} == set(families)
    for family in families.values():
        assert family.documentation, family.name


def test_successful_job(fleet: Fleet) -> None:
    reg = _registry(fleet)
    p = {"backup_job": "ok", "repository": "primary"}
    assert value(reg, "backupctl_backup_last_status", **p) == 1
    assert value(reg, "backupctl_backup_last_success_timestamp_seconds", **p) == ts(0)
    assert value(reg, "backupctl_backup_duration_seconds", **p) == 12.5
    assert value(reg, "backupctl_backup_added_bytes", **p) == 1048576
    assert value(reg, "backupctl_generations", **p) == 7  # newest observation wins
    assert value(reg, "backupctl_generations_expected", **p) == 7
    assert value(reg, "backupctl_generations", backup_job="ok", repository="usb") == 5
    assert value(reg, "backupctl_verify_last_status", **p) == 1
    assert value(reg, "backupctl_verify_last_success_timestamp_seconds", **p) == ts(2)
    assert value(reg, "backupctl_verify_files_checked", **p) == 12
    assert value(reg, "backupctl_verify_mismatches", **p) == 0
    assert value(reg, "backupctl_verify_coverage_ratio", **p) == 0.05
    # the newest quick test measured no restore: the newest full one still counts
    assert value(reg, "backupctl_restore_duration_seconds", **p) == 300
    assert value(reg, "backupctl_restore_rto_seconds", backup_job="ok") == 7200
    assert value(reg, "backupctl_verify_last_status", backup_job="ok", repository="usb") == 1
    assert value(reg, "backupctl_restore_duration_seconds", backup_job="ok",
                 repository="usb") is None
    usb = {"backup_job": "ok", "repository": "usb"}
    assert value(reg, "backupctl_copy_last_status", **usb) == 1
    assert value(reg, "backupctl_copy_last_success_timestamp_seconds", **usb) == ts(3)
    assert value(reg, "backupctl_copy_age_seconds", **usb) == 27 * 3600
    assert value(reg, "backupctl_copy_max_age_seconds", **usb) == 7 * 86400
    assert value(reg, "backupctl_immutable_probe_ok", backup_job="ok", repository="usb") is None
    assert value(reg, "backupctl_immutable_probe_ok", backup_job="ok", repository="worm") == 1
    assert value(reg, "backupctl_suspicious", backup_job="ok") == 0  # flag was cleared
    assert value(reg, "backupctl_copy_info", backup_job="ok", repository="worm",
                 kind="immutable") == 1
    assert value(reg, "backupctl_job_info", backup_job="ok", host="local",
                 description="テスト ok") == 1
    assert value(reg, "backupctl_info", version=fleet.source().version,
                 restic_version="0.14.0") == 1
    assert value(reg, "backupctl_state_up") == 1


def test_failed_job_keeps_its_last_success_and_reports_failures(fleet: Fleet) -> None:
    reg = _registry(fleet)
    p = {"backup_job": "failed", "repository": "primary"}
    assert value(reg, "backupctl_backup_last_status", **p) == 0
    assert value(reg, "backupctl_backup_last_run_timestamp_seconds", **p) == ts(24)
    assert value(reg, "backupctl_backup_last_success_timestamp_seconds", **p) == ts(0)
    assert value(reg, "backupctl_verify_last_status", **p) == 0
    assert value(reg, "backupctl_verify_last_success_timestamp_seconds", **p) == ts(1)
    assert value(reg, "backupctl_verify_mismatches", **p) == 2
    assert value(reg, "backupctl_verify_files_checked", **p) == 10
    assert value(reg, "backupctl_restore_duration_seconds", **p) == 9000  # measured, failed
    assert value(reg, "backupctl_restore_rto_seconds", backup_job="failed") is None
    worm = {"backup_job": "failed", "repository": "worm"}
    assert value(reg, "backupctl_copy_last_status", **worm) == 0
    assert value(reg, "backupctl_copy_last_success_timestamp_seconds", **worm) == ts(3)
    assert value(reg, "backupctl_immutable_probe_ok", **worm) == 0
    assert value(reg, "backupctl_immutable_probe_last_run_timestamp_seconds", **worm) == ts(26.1)


def test_job_that_never_ran_has_status_zero_and_no_timestamps(fleet: Fleet) -> None:
    reg = _registry(fleet)
    p = {"backup_job": "never", "repository": "primary"}
    assert value(reg, "backupctl_backup_last_status", **p) == 0
    assert value(reg, "backupctl_verify_last_status", **p) == 0
    assert value(reg, "backupctl_suspicious", backup_job="never") == 0
    for copy in ("usb", "worm"):
        assert value(reg, "backupctl_copy_last_status", backup_job="never", repository=copy) == 0
        assert value(reg, "backupctl_copy_age_seconds", backup_job="never",
                     repository=copy) is None
    assert value(reg, "backupctl_immutable_probe_ok", backup_job="never", repository="worm") == 0
    text = exposition(fleet.source())[0].decode()
    never = [line for line in text.splitlines()
             if 'backup_job="never"' in line and "timestamp" in line]
    assert never == []
    for name in ("backupctl_backup_duration_seconds", "backupctl_generations",
                 "backupctl_verify_files_checked", "backupctl_restore_duration_seconds"):
        assert value(reg, name, **p) is None


def test_interrupted_counts_as_failed_and_running_is_ignored(fleet: Fleet) -> None:
    reg = _registry(fleet)
    p = {"backup_job": "broken", "repository": "primary"}
    assert value(reg, "backupctl_backup_last_status", **p) == 0
    assert value(reg, "backupctl_backup_last_run_timestamp_seconds", **p) == ts(24)
    assert value(reg, "backupctl_backup_last_success_timestamp_seconds", **p) == ts(0)


def test_suspicious_job(fleet: Fleet) -> None:
    reg = _registry(fleet)
    assert value(reg, "backupctl_suspicious", backup_job="ransom") == 1
    assert value(reg, "backupctl_backup_last_status", backup_job="ransom",
                 repository="primary") == 0
    assert value(reg, "backupctl_backup_last_success_timestamp_seconds", backup_job="ransom",
                 repository="primary") is None


def test_only_configured_jobs_are_exposed(fleet: Fleet) -> None:
    reg = registry(fleet.source(jobs=fleet.jobs[:1]))[0]
    assert value(reg, "backupctl_backup_last_status", backup_job="ok", repository="primary") == 1
    assert value(reg, "backupctl_backup_last_status", backup_job="failed",
                 repository="primary") is None


def test_state_is_read_on_every_collect(fleet: Fleet) -> None:
    reg = _registry(fleet)
    p = {"backup_job": "never", "repository": "primary"}
    assert value(reg, "backupctl_backup_last_status", **p) == 0
    fleet.run("never", "backup", "success", at=31, duration=1.0)
    assert value(reg, "backupctl_backup_last_status", **p) == 1
    assert value(reg, "backupctl_backup_last_success_timestamp_seconds", **p) == ts(31)


def test_unreadable_state_is_state_up_zero_without_per_run_series(
        fleet: Fleet, tmp_path: Path) -> None:
    text, ok = exposition(fleet.source(url=f"sqlite:///{tmp_path / 'missing.db'}"))
    assert not ok
    samples = {s.name: s for f in text_string_to_metric_families(text.decode())
               for s in f.samples}
    assert samples["backupctl_state_up"].value == 0
    assert "backupctl_job_info" in samples  # the configuration is still known
    assert "backupctl_backup_last_status" not in samples
    assert not (tmp_path / "missing.db").exists(), "a reader must never create the database"


def test_reader_never_writes(fleet: Fleet) -> None:
    path = Path(fleet.url.removeprefix("sqlite:///"))
    path.chmod(0o444)
    before = path.read_bytes()
    try:
        text, ok = exposition(fleet.source())
    finally:
        path.chmod(0o644)
    assert ok, text
    assert path.read_bytes() == before


def test_fast_renderer_writes_exactly_what_prometheus_client_writes(fleet: Fleet) -> None:
    tricky = make_job("tricky")
    tricky = tricky.model_copy(update={"description": 'a "quoted" \\ back\nslash 電子カルテ'})
    reg = registry(fleet.source(jobs=[*fleet.jobs, tricky]))[0]
    assert render(reg) == generate_latest(reg)
    assert b'description="a \\"quoted\\" \\\\ back\\nslash' in render(reg)


def test_promtool_accepts_the_exposition(fleet: Fleet) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run `make install`")
    text = exposition(fleet.source())[0]
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == b"", "promtool lint findings"
