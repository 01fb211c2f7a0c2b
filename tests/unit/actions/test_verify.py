"""`verify --dry-run`'s plan says what a quick verify with prove_within restores and checks."""

from __future__ import annotations

from pathlib import Path

from backupctl.actions import verify
from tests.unit.actions.conftest import make_context


def test_the_plan_of_a_quick_verify_with_prove_within_names_due_files_and_the_rotation(
        tmp_path: Path) -> None:
    ctx, job = make_context(tmp_path, verify={"prove_within": "30d", "read_data_subset": "5%"})
    scratch = ctx.config.settings.scratch_dir
    steps = "\n".join(verify.plan(job, mode="quick", scratch_dir=scratch))
    assert "<due files: unproven, then longest-unproven>" in steps
    assert "--read-data-subset=N/T (pack group N of T in turn" in steps
    assert "--read-data-subset=5%" not in steps
    full = "\n".join(verify.plan(job, mode="full", scratch_dir=scratch))
    assert "--read-data-subset=5%" in full and "N/T" not in full


def test_the_plan_without_prove_within_is_unchanged(tmp_path: Path) -> None:
    ctx, job = make_context(tmp_path, verify={"read_data_subset": "5%"})
    steps = "\n".join(verify.plan(job, mode="quick", scratch_dir=ctx.config.settings.scratch_dir))
    assert "--read-data-subset=5%" in steps and "due files" not in steps
