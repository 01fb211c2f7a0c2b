"""`backupctl verify`: restore tests (registered on the shared typer app)."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from backupctl.actions import repo as repos
from backupctl.actions import verify as verify_action
from backupctl.actions.outcome import JobResult
from backupctl.actions.repo import PRIMARY
from backupctl.actions.verify import VerifyResult
from backupctl.cli.app import app, die, load, run_each, select, show_plans
from backupctl.errors import UsageError


class Mode(enum.StrEnum):
    quick = "quick"
    full = "full"


def _line(outcome: JobResult) -> str:
    if not isinstance(outcome, VerifyResult) or outcome.snapshot_id is None:
        return ""
    verdict = {0: "data proven good", 3: "BAD DATA", 1: "not proven"}.get(
        int(outcome.status), outcome.status.name)
    parts = [f"{outcome.mode} verify of snapshot {outcome.snapshot_id[:8]} "
             f"({outcome.repository}): {verdict}",
             f"{outcome.files_checked} file(s) / {outcome.bytes_checked} bytes hashed",
             f"{len(outcome.mismatches)} mismatch(es)"]
    if outcome.restore_seconds is not None:
        rto = f" (RTO {outcome.rto_seconds}s)" if outcome.rto_seconds else ""
        parts.append(f"full restore {outcome.restore_seconds:.1f}s{rto}")
    if outcome.changed_since_snapshot:
        parts.append(f"{len(outcome.changed_since_snapshot)} changed since snapshot (not "
                     f"compared): {', '.join(repr(p) for p in outcome.changed_since_snapshot)}")
    if outcome.coverage_ratio is not None:
        parts.append(f"coverage {outcome.coverage_ratio:.1%}")
    return ", ".join(parts)


@app.command()
def verify(
    jobs: Annotated[list[str] | None, typer.Argument(help="job names",
                                                     show_default=False)] = None,
    all_jobs: Annotated[bool, typer.Option("--all", help="every job in jobs_dir")] = False,
    mode: Annotated[Mode, typer.Option("--mode", help="quick: restore only the manifest's "
                                       "files; full: restore everything, run checks, time "
                                       "it")] = Mode.quick,
    source: Annotated[str, typer.Option("--from", help="repository: primary or a copy "
                                        "name")] = PRIMARY,
    snapshot: Annotated[str, typer.Option("--snapshot", help="snapshot id or latest")]
    = "latest",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on "
                                          "stdout")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan, run "
                                          "nothing")] = False,
) -> None:
    """Restore test: prove a snapshot's data against the source manifest (exit 3: bad data)."""
    config = load()
    selected = select(config, jobs, all_jobs=all_jobs)
    try:
        for job in selected:
            repos.check_name(job, source)
    except UsageError as exc:
        die(exc)
    if dry_run:
        show_plans("verify", {j.name: verify_action.plan(
            j, mode=mode.value, snapshot=snapshot, source=source,
            scratch_dir=config.settings.scratch_dir) for j in selected}, as_json=as_json)
        return
    run_each("verify", config, selected, lambda ctx, j: verify_action.verify(
        ctx, j, mode=mode.value, snapshot=snapshot, source=source), as_json=as_json, text=_line)
