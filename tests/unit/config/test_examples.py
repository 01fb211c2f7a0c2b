"""The example files in jobs/ are valid against the schema (not the filesystem checks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupctl.config import calendar
from backupctl.config.load import Document, load_yaml, plain
from backupctl.config.schema import GlobalConfig, Job
from backupctl.config.validate import guideline_findings

JOBS = Path(__file__).resolve().parents[3] / "jobs"


def _document(name: str) -> Document:
    doc = load_yaml(JOBS / name)
    assert isinstance(doc, Document), str(doc)
    return doc


@pytest.mark.parametrize("name", ["emr-db.yaml", "fileserver.yaml"])
def test_example_job_matches_the_schema_and_the_guideline(name: str) -> None:
    data = plain(_document(name).data)
    job = Job.model_validate(data)
    assert f"{job.name}.yaml" == name
    assert guideline_findings(data) == []
    for expr in (job.schedule.backup, job.schedule.copy_, job.schedule.verify):
        assert expr is not None and calendar.check(expr) is None, expr
    roots = tuple(p.rstrip("/") + "/" for p in job.source.paths)
    assert all(p.startswith(roots) for p in [*job.verify.always, *job.verify.canaries])


def test_emr_db_is_the_ssh_example() -> None:
    job = Job.model_validate(plain(_document("emr-db.yaml").data))
    assert job.description == "電子カルテDBサーバ"
    assert not job.host.is_local and job.host.identity_file is not None
    assert job.repository.served  # the default install.md teaches: local_url over SSH
    assert {c.kind for c in job.copies} == {"offline", "immutable"}
    assert job.verify.rto == 7200 and job.verify.read_data_subset == pytest.approx(0.1)
    assert job.runbook.steps


def test_fileserver_is_the_local_example() -> None:
    job = Job.model_validate(plain(_document("fileserver.yaml").data))
    assert job.host.is_local
    assert job.verify.sample.count == 200


def test_global_example() -> None:
    settings = GlobalConfig.model_validate(plain(_document("backupctl.example.yaml").data))
    assert settings.concurrency == 2
    assert settings.command_timeout == 6 * 3600
    assert (settings.ssh_keepalive, settings.ssh_dead_after) == (15, 120)
    assert settings.evidence_retention == GlobalConfig.model_fields["evidence_retention"].default


def test_global_example_uses_the_paths_install_md_creates() -> None:
    """The example and install.md's backupctl.yaml name the same places (issue 29: their
    known_hosts differed)."""
    import re

    install = (JOBS.parent / "docs" / "install.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", install, re.S) if "jobs_dir:" in b)
    documented = dict(re.findall(r"^(\w+): (\S+)", block, re.M))
    example = plain(_document("backupctl.example.yaml").data)
    for key in ("jobs_dir", "state_dir", "scratch_dir", "known_hosts"):
        assert example[key] == documented[key], key
    assert Path(example["known_hosts"]).parent == Path(
        plain(_document("emr-db.yaml").data)["host"]["identity_file"]).parent
