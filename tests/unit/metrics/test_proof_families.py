"""Proof freshness metrics (SPEC §12): unproven files, the oldest proof (+Inf while any is
unproven), the longest wait against the window; promtool-clean, and cheap to read."""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest
from prometheus_client.exposition import generate_latest

from backupctl.config.schema import Job
from backupctl.metrics import exposition, registry, render
from backupctl.state import proofs
from tests.unit.metrics.conftest import Fleet, make_job
from tests.unit.metrics.test_collector import value

M = "2026-11-01T00:00:00.000000000+00:00"
SEEN = "2026-11-10T02:00:00.000000+00:00"
PROVEN = "2026-11-15T02:00:00.000000+00:00"


def _fresh_job() -> Job:
    job = make_job("fresh")
    return job.model_copy(update={"verify": job.verify.model_copy(
        update={"prove_within": 30 * 86400})})


def _seed(fleet: Fleet, *, proven: list[str]) -> None:
    paths = ["/a", "/b", "/c"]
    rows = [{"path": p, "size": 1, "mtime": M, "sha256": "a" * 64, "seen_at": SEEN,
             "proven_at": None} for p in paths]
    with fleet.store.transaction() as conn:
        proofs.apply(conn, "fresh", snapshot_id="s1", remove=paths,
                     add=rows, files=3, changed=3, untracked=0, at=SEEN)
        proofs.mark_proven(conn, "fresh", [(p, 1, "a" * 64) for p in proven], at=PROVEN)


def test_unproven_files_make_the_oldest_proof_infinite(fleet: Fleet) -> None:
    _seed(fleet, proven=["/a"])
    reg = registry(fleet.source(jobs=[*fleet.jobs, _fresh_job()]))[0]
    assert value(reg, "backupctl_files_unproven", backup_job="fresh") == 2
    assert value(reg, "backupctl_proof_files", backup_job="fresh") == 3
    assert value(reg, "backupctl_proof_oldest_seconds", backup_job="fresh") == math.inf
    waited = fleet.clock.now.timestamp() - 1_794_276_000  # since SEEN (2026-11-10T02:00Z)
    assert value(reg, "backupctl_proof_age_seconds", backup_job="fresh") == waited
    assert value(reg, "backupctl_proof_within_seconds", backup_job="fresh") == 30 * 86400
    assert value(reg, "backupctl_files_unproven", backup_job="ok") is None  # no prove_within


def test_every_file_proven_gives_the_age_of_the_oldest_proof(fleet: Fleet) -> None:
    _seed(fleet, proven=["/a", "/b", "/c"])
    reg = registry(fleet.source(jobs=[_fresh_job()]))[0]
    assert value(reg, "backupctl_files_unproven", backup_job="fresh") == 0
    age = fleet.clock.now.timestamp() - 1_794_708_000  # since PROVEN (2026-11-15T02:00Z)
    assert value(reg, "backupctl_proof_oldest_seconds", backup_job="fresh") == age
    assert value(reg, "backupctl_proof_age_seconds", backup_job="fresh") == age


def test_a_job_before_its_first_backup_shows_only_its_window(fleet: Fleet) -> None:
    reg = registry(fleet.source(jobs=[_fresh_job()]))[0]
    assert value(reg, "backupctl_proof_within_seconds", backup_job="fresh") == 30 * 86400
    assert value(reg, "backupctl_files_unproven", backup_job="fresh") is None


def test_promtool_accepts_infinity_and_the_fast_renderer_agrees(fleet: Fleet) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run `make install`")
    _seed(fleet, proven=[])
    source = fleet.source(jobs=[*fleet.jobs, _fresh_job()])
    reg = registry(source)[0]
    assert render(reg) == generate_latest(reg)
    text = exposition(source)[0]
    assert b'backupctl_proof_oldest_seconds{backup_job="fresh"} +Inf' in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == b"", "promtool lint findings"
