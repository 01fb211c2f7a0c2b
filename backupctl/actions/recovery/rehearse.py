"""`backupctl drill JOB --to TARGET`: the worst day rehearsed on a spare server.

The drill's conversation, timing and record (actions/drill.py: steps, manual steps,
remarks, kind `drill`, `target_kind` `replacement`) around the recovery's own path
(actions/recovery: the plan's refusals before anything runs, restic on the target through
the tunnel, owners by name, the proof on the target, `--databases` into the target's
PostgreSQL). The drill's restore time is the recovery's RTO: from the start of the command
to a proven target (the databases' restores added). Without `--databases` the job's
databases are proven as in every drill, in a throwaway server on the orchestrator. The
restored data stays on the spare server (a drill never overwrites: no `--overwrite`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace

from backupctl.actions.context import Context
from backupctl.actions.drill import (
    FAIL,
    PASS,
    Drilled,
    DrillPlan,
    DrillResult,
    DrillUI,
    StepFailed,
    finish,
    manual_steps,
    restore_databases,
    timed,
)
from backupctl.actions.jobrun import job_run
from backupctl.actions.recovery import run as recovery
from backupctl.actions.recovery.plan import Prepared
from backupctl.actions.recovery.proof import Stats
from backupctl.actions.restore_test.databases import describe, require_restore_user
from backupctl.actions.restore_test.verdict import Findings
from backupctl.config.schema import Job
from backupctl.execute import Runner, StdoutSink
from backupctl.state.database_proof import DatabaseProof
from backupctl.state.records import DrillDetails, DrillStep


class _Shown:
    """The recovery's UI over the drill's: lines only (the drill shows its own steps)."""

    def __init__(self, ui: DrillUI) -> None:
        self.ui = ui

    def info(self, text: str) -> None:
        self.ui.info(text)

    def restoring(self, total_bytes: int, total_files: int,
                  ) -> contextlib.nullcontext[StdoutSink | None]:
        return contextlib.nullcontext(None)


def _step_result(before: Findings, after: Findings) -> str:
    return FAIL if len(after.mismatches) > len(before.mismatches) else PASS


class Rehearsal:
    """The steps of a drill onto a spare server, over one prepared recovery."""

    def __init__(self, prepared: Prepared, runner: Runner) -> None:
        self.prepared = prepared
        self.runner = runner
        self.unchanged: Stats | None = None  # the owners pass's stat, when it changed nothing

    def chosen(self, plan: DrillPlan, state: Drilled) -> tuple[Drilled, str, str]:
        snap, refs = self.prepared.snap, self.prepared.refs
        detail = (f"snapshot {snap.short_id} of {snap.time} ({self.prepared.request.snapshot})"
                  f" in {self.prepared.repo.name}; {len(refs.refs)} reference hash(es)")
        plan.ui.info(detail)
        return replace(state, snap=snap, refs=refs), PASS, detail

    def restored(self, plan: DrillPlan, state: Drilled) -> tuple[Drilled, str, str]:
        ctx, job, ui = plan.ctx, plan.job, _Shown(plan.ui)
        done = recovery.restore_step(ctx, job, self.prepared, self.runner, ui,
                                     recovery.Recovery())
        done = recovery.owners_step(ctx, job, self.prepared, self.runner, ui, done)
        self.unchanged = done.unchanged
        detail = (f"{done.findings.files_restored} file(s), {done.findings.bytes_restored} "
                  f"bytes onto {self.prepared.target.display()}; {done.owners_mapped} "
                  "owner(s) mapped by name")
        return (replace(state, findings=state.findings + done.findings),
                _step_result(Findings(), done.findings), detail)

    def proven(self, plan: DrillPlan, state: Drilled) -> tuple[Drilled, str, str]:
        ctx, job = plan.ctx, plan.job
        recovery.between_restore_and_proof(self.runner, self.prepared)
        done = recovery.proof_step(ctx, job, self.prepared, self.runner, _Shown(plan.ui),
                                   recovery.Recovery(unchanged=self.unchanged))
        found = done.findings
        # the recovery's RTO: from the start of the command to a proven target
        found = replace(found, restore_ms=round((time.monotonic() - plan.started) * 1000))
        detail = (f"{found.files_checked} file(s) hashed on the target against the source "
                  f"manifest, {len(found.mismatches)} difference(s)")
        return (replace(state, findings=state.findings + found),
                _step_result(Findings(), found), detail)

    def databases(self, plan: DrillPlan, state: Drilled) -> Drilled:
        """--databases: into the target's PostgreSQL; else the drill's throwaway proof."""
        if self.prepared.databases is None:
            return restore_databases(plan, state)
        try:
            done = recovery.databases_step(plan.ctx, plan.job, self.prepared, self.runner,
                                           _Shown(plan.ui), recovery.Recovery())
        except BaseException as exc:
            raise StepFailed(state) from exc
        steps = [_database_step(p, done.timings_ms.get("databases", 0))
                 for p in done.findings.databases]
        return state.add(*steps, findings=done.findings)

    def steps(self, plan: DrillPlan) -> Drilled:
        state = timed(plan, Drilled(), "snapshot", self.chosen)
        state = timed(plan, state, f"restore onto {self.prepared.target.display()}",
                      self.restored)
        state = timed(plan, state, "proof on the target", self.proven)
        return manual_steps(plan, self.databases(plan, state))


def _database_step(proof: DatabaseProof, ms: int) -> DrillStep:
    return DrillStep.model_validate({
        "name": f"database {proof.name} → {proof.name}_restored on the target",
        "kind": "auto", "result": PASS if proof.result == "proven" else FAIL,
        "duration_ms": proof.timings_ms.get("total", ms), "detail": describe(proof)[:2000]})


def drill_onto(ctx: Context, job: Job, ui: DrillUI, prepared: Prepared,
               runner: Runner) -> DrillResult:
    """Rehearse the recovery onto the prepared spare server; recorded as a drill."""
    if prepared.databases is None:
        require_restore_user(ctx, job, mode="full")
    with job_run(ctx, job, "drill", DrillDetails, repository=prepared.repo.name) as run:
        plan = DrillPlan(ctx, job, prepared.repo, ui, prepared.request.snapshot, None,
                         started=prepared.request.started, onto=prepared.target.display())
        finish(run, plan, Rehearsal(prepared, runner).steps)
    return run.result
