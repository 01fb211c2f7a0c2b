"""`backupctl verify`: restore tests."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from backupctl.actions import repo as repos
from backupctl.actions import verify as verify_action
from backupctl.actions.results import JobResult, RunResult
from backupctl.cli.common import (
    AllOpt,
    DryOpt,
    DueOpt,
    JobsArg,
    JsonOpt,
    load,
    run_each,
    select,
    show_plans,
)
from backupctl.state.records import DatabaseProof, VerifyDetails

app = typer.Typer()


class Mode(enum.StrEnum):
    quick = "quick"
    full = "full"


def _line(result: JobResult) -> str:
    if not isinstance(result, RunResult) or not isinstance(result.details, VerifyDetails) \
            or result.snapshot_id is None:
        return ""
    d = result.details
    verdict = {0: "data proven good", 3: "BAD DATA", 1: "not proven"}.get(
        int(result.status), result.status.name)
    parts = [f"{d.mode} verify of snapshot {result.snapshot_id[:8]} ({result.repository}): "
             f"{verdict}",
             f"{d.files_checked} file(s) / {d.bytes_checked} bytes hashed",
             f"{len(d.mismatches)} mismatch(es)"]
    if d.restore_ms is not None:
        rto = f" (RTO {d.rto_seconds}s)" if d.rto_seconds else ""
        parts.append(f"full restore {d.restore_ms / 1000:.1f}s{rto}")
    if d.changed_since_snapshot:
        parts.append(f"{len(d.changed_since_snapshot)} changed since snapshot (not compared): "
                     + ", ".join(repr(p) for p in d.changed_since_snapshot))
    if d.unverifiable:
        parts.append(f"{len(d.unverifiable)} name(s) not verifiable (not UTF-8, not told "
                     "apart on the source): "
                     + ", ".join(repr(p) for p in d.unverifiable[:10]))
    if d.coverage is not None:
        parts.append(f"coverage {float(d.coverage):.1%}")
    return ", ".join(parts) + "".join(f"\n    {_database(db)}" for db in d.databases)


def _database(db: DatabaseProof) -> str:
    """One line per database: what was compared, and the verdict on it."""
    if db.result == "not_proven":
        return f"database {db.name}: not proven"
    if db.mode == "full":
        line = (f"database {db.name}: {db.tables_checked} table(s) compared, "
                f"{db.rows_restored} of {db.rows_expected} row(s) restored, "
                + (f"{db.schema_checked} schema object(s) compared" if db.schema_checked
                   is not None else "no schema fingerprint recorded (rows only)"))
    else:
        line = (f"database {db.name}: dump SHA-256 "
                f"{'matches' if db.sha256_match else 'DIFFERS'}, {db.tables_checked} "
                "table(s) listed" + (f", {db.schema_checked} schema object(s) listed"
                                     if db.schema_checked is not None else ""))
    if db.checks:
        passed = sum(1 for c in db.checks if c.passed)
        line += f", {passed}/{len(db.checks)} check(s) passed"
    if db.restore_ms is not None:
        line += f", restored in {db.restore_ms / 1000:.1f}s"
    return line + (": BAD DATA" if db.result == "bad_data" else ": proven")


@app.command()
def verify(
    jobs: JobsArg = None,
    all_jobs: AllOpt = False,
    mode: Annotated[Mode, typer.Option("--mode", help="quick: restore only the manifest's "
                                       "files; full: restore everything, run checks, time "
                                       "it")] = Mode.quick,
    source: Annotated[str, typer.Option("--from", help="repository: primary or a copy "
                                        "name")] = repos.PRIMARY,
    snapshot: Annotated[str, typer.Option("--snapshot", help="snapshot id or latest")]
    = "latest",
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    due: DueOpt = False,
) -> None:
    """Restore test: prove a snapshot's data against the source manifest (exit 3: bad data)."""
    config = load()
    selected = select(config, jobs, all_jobs=all_jobs)
    for job in selected:
        repos.check_name(job, source)
    if dry_run:
        show_plans("verify", {j.name: verify_action.plan(
            j, mode=mode.value, snapshot=snapshot, source=source,
            scratch_dir=config.settings.scratch_dir) for j in selected}, as_json=as_json,
            invalid=config.invalid)
        return
    run_each("verify", config, selected, lambda ctx, j: verify_action.verify(
        ctx, j, mode=mode.value, snapshot=snapshot, source=source, only_if_fits=due),
        as_json=as_json, text=_line, due=due, all_jobs=all_jobs, named=jobs or [],
        due_kind="verify-full" if mode is Mode.full else None)
