"""The metric families of SPEC §5 (and more), built from job configuration and a StateView.

Conventions (docs/metrics.md):
- every per-job series has `backup_job` (never `job`: Prometheus owns it) and, where it
  applies, `repository` (`primary` or a copy name);
- a `*_last_status` / `*_probe_ok` series exists for every configured job (and copy) from
  the start, 0 until a run succeeded; `*_timestamp_seconds` series exist only once such a
  run exists: a job that never ran has no timestamp at all, never a fake 0;
- only jobs in the current configuration are exposed (a removed job stops alerting).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric

from backupctl.config.schema import Job
from backupctl.fmt import ms_to_seconds
from backupctl.state.records import BackupDetails, DatabaseProof, VerifyDetails, read
from backupctl.state.view import Run, StateView, unix

JOB = ("backup_job",)
REPO = ("backup_job", "repository")
CHANNEL = ("channel",)
DATABASE = ("backup_job", "database")


@dataclass(frozen=True)
class Spec:
    name: str
    help: str
    labels: tuple[str, ...]


GAUGES: tuple[Spec, ...] = (
    Spec("backupctl_state_up", "1 if the state database could be read for this scrape/write, "
         "else 0 (then no per-run series are exposed)", ()),
    Spec("backupctl_job_file_invalid",
         "1 per job file that does not validate: its job runs nowhere until it is fixed "
         "(`backupctl validate`); the other jobs run", ("file",)),
    Spec("backupctl_backup_last_success_timestamp_seconds",
         "End time (Unix) of the newest successful backup; absent if none ever succeeded", REPO),
    Spec("backupctl_backup_last_run_timestamp_seconds",
         "End time (Unix) of the newest finished backup, whatever its result; absent if none",
         REPO),
    Spec("backupctl_backup_last_status",
         "1 if the newest finished backup succeeded, else 0 (also 0 if it never ran)", REPO),
    Spec("backupctl_backup_duration_seconds",
         "Duration of the newest successful backup as measured by restic", REPO),
    Spec("backupctl_backup_added_bytes",
         "Bytes added to the repository by the newest successful backup", REPO),
    Spec("backupctl_generations", "Snapshots held, per job and repository (newest observation)",
         REPO),
    Spec("backupctl_generations_expected",
         "Snapshots the generation policy expects to be held now (newest observation)", REPO),
    Spec("backupctl_copy_last_success_timestamp_seconds",
         "End time (Unix) of the newest successful copy; absent if none ever succeeded", REPO),
    Spec("backupctl_copy_last_run_timestamp_seconds",
         "End time (Unix) of the newest finished copy, whatever its result; absent if none",
         REPO),
    Spec("backupctl_copy_last_status",
         "1 if the newest finished copy succeeded, else 0 (also 0 if it never ran)", REPO),
    Spec("backupctl_copy_age_seconds",
         "Seconds since the newest successful copy ended; absent if none ever succeeded", REPO),
    Spec("backupctl_copy_max_age_seconds",
         "The copy's max_age from the job file: an older copy is an alert", REPO),
    Spec("backupctl_immutable_probe_ok",
         "1 if the newest immutability probe was refused as it should be, else 0 (also 0 if "
         "never probed)", REPO),
    Spec("backupctl_immutable_probe_last_run_timestamp_seconds",
         "End time (Unix) of the newest finished immutability probe; absent if none", REPO),
    Spec("backupctl_verify_last_success_timestamp_seconds",
         "End time (Unix) of the newest passed restore test; absent if none ever passed", REPO),
    Spec("backupctl_verify_last_run_timestamp_seconds",
         "End time (Unix) of the newest finished restore test, whatever its result; absent if "
         "none", REPO),
    Spec("backupctl_verify_last_status",
         "1 if the newest finished restore test passed (data proven good), else 0 (also 0 if "
         "it never ran)", REPO),
    Spec("backupctl_verify_files_checked", "Files hashed and compared by the newest restore test",
         REPO),
    Spec("backupctl_verify_mismatches",
         "Files that differed or were missing in the newest restore test", REPO),
    Spec("backupctl_verify_coverage_ratio",
         "Share (0..1) of the snapshot's files the newest restore test proved", REPO),
    Spec("backupctl_restore_duration_seconds",
         "Duration of the newest full restore (the measured recovery time)", REPO),
    Spec("backupctl_recovery_duration_seconds",
         "Start to proven target of the newest successful recovery onto a replacement server "
         "(`backupctl restore`: the real RTO); absent if none", JOB),
    Spec("backupctl_restore_rto_seconds",
         "The job's recovery time objective (verify.rto); absent if the job sets none", JOB),
    Spec("backupctl_suspicious",
         "1 while a ransomware tripwire is raised for the job (cleared by `backupctl clear`)",
         JOB),
    Spec("backupctl_notify_last_status",
         "1 if the newest delivery attempt on the notification channel succeeded, else 0 "
         "(channel `ping`: the dead-man's-switch pings)", CHANNEL),
    Spec("backupctl_notify_last_success_timestamp_seconds",
         "Time (Unix) of the newest delivery that reached the channel; absent if none",
         CHANNEL),
    Spec("backupctl_database_restore_duration_seconds",
         "Time to restore the database's dump into a throwaway server in the newest full "
         "restore test that restored it (counts toward the job's RTO)", DATABASE),
    Spec("backupctl_database_tables_checked",
         "Tables whose rows the newest restore test of the database compared with the "
         "backup's counts (quick: tables found in the dump's table of contents)", DATABASE),
    Spec("backupctl_database_row_mismatches",
         "Tables whose restored rows differed from the backup's count (or were missing) in "
         "the newest restore test of the database", DATABASE),
)
# Proof freshness (SPEC §12): jobs with verify.prove_within, once a backup recorded its files.
PROOF_GAUGES: tuple[Spec, ...] = (
    Spec("backupctl_files_unproven",
         "Files of the newest snapshot whose current content (path, size, mtime) no restore "
         "test has restored and matched against its source hash yet", JOB),
    Spec("backupctl_proof_oldest_seconds",
         "Age of the oldest proof among the newest snapshot's files; +Inf while any file is "
         "unproven", JOB),
    Spec("backupctl_proof_age_seconds",
         "How long the longest-waiting file of the newest snapshot has gone without proof: "
         "since its proof, or since it was first backed up if it is unproven (compare with "
         "backupctl_proof_within_seconds)", JOB),
    Spec("backupctl_proof_within_seconds",
         "The job's verify.prove_within: every file must be proven within this long", JOB),
    Spec("backupctl_proof_files", "Files of the newest snapshot whose proofs are tracked", JOB),
)
GAUGES += PROOF_GAUGES
INFOS: tuple[Spec, ...] = (
    Spec("backupctl_info", "backupctl and restic versions (value always 1)",
         ("version", "restic_version")),
    Spec("backupctl_job_info", "One series per configured job (value always 1)",
         ("backup_job", "host", "description")),
    Spec("backupctl_copy_info", "One series per configured copy (value always 1)",
         ("backup_job", "repository", "kind")),
)
ALL: tuple[Spec, ...] = INFOS + GAUGES


class _Out:
    def __init__(self) -> None:
        self.gauges = {s.name: GaugeMetricFamily(s.name, s.help, labels=list(s.labels))
                       for s in GAUGES}

    def set(self, name: str, labels: Sequence[str], value: float | None) -> None:
        if value is not None:
            self.gauges[name].add_metric(list(labels), value)


def _info(spec: Spec, rows: Iterable[Sequence[str]]) -> InfoMetricFamily:
    family = InfoMetricFamily(spec.name.removesuffix("_info"), spec.help)
    for row in rows:
        family.add_metric([], dict(zip(spec.labels, row, strict=True)))
    return family


def families(jobs: Sequence[Job], view: StateView | None, *, now: float, version: str,
             restic_version: str, channels: Sequence[str] | None = None,
             invalid_files: Sequence[str] = ()) -> list[Metric]:
    """Every family for these jobs; `view` None means the state could not be read.

    `channels`: the notification channels to expose (the configured ones); None: every
    channel the state knows. `invalid_files`: job files left out because they do not
    validate (exposed whether or not the state can be read)."""
    out = _Out()
    infos: list[Metric] = [
        _info(INFOS[0], [(version, restic_version)]),
        _info(INFOS[1], [(j.name, j.host.display(), j.description or "") for j in jobs]),
        _info(INFOS[2], [(j.name, c.name, c.kind) for j in jobs for c in j.copies]),
    ]
    out.set("backupctl_state_up", [], 1.0 if view is not None else 0.0)
    for path in invalid_files:
        out.set("backupctl_job_file_invalid", [path], 1.0)
    for job in jobs:
        out.set("backupctl_restore_rto_seconds", [job.name],
                float(job.verify.rto) if job.verify.rto else None)
        for copy in job.copies:
            out.set("backupctl_copy_max_age_seconds", [job.name, copy.name], float(copy.max_age))
        if view is not None:
            _job(out, job, view, now=now)
    if view is not None:
        _channels(out, view, channels)
    return [*infos, *out.gauges.values()]


def _channels(out: _Out, view: StateView, wanted: Sequence[str] | None) -> None:
    """Only channels that were tried: one never used has no status to alert on."""
    for channel, (ok, last_success) in sorted(view.channels.items()):
        if wanted is None or channel in wanted:
            out.set("backupctl_notify_last_status", [channel], 1.0 if ok else 0.0)
            out.set("backupctl_notify_last_success_timestamp_seconds", [channel],
                    last_success)


def _job(out: _Out, job: Job, view: StateView, *, now: float) -> None:
    name = job.name
    primary = [name, "primary"]
    newest, good = view.newest.get(("backup", name, "primary")), \
        view.success.get(("backup", name, "primary"))
    out.set("backupctl_backup_last_status", primary,
            1.0 if newest is not None and newest.status == "success" else 0.0)
    out.set("backupctl_backup_last_run_timestamp_seconds", primary,
            newest.finished_at if newest else None)
    backup = read(BackupDetails, good.details) if good is not None else None
    if good is not None and backup is not None:
        out.set("backupctl_backup_last_success_timestamp_seconds", primary, good.finished_at)
        out.set("backupctl_backup_duration_seconds", primary, backup.duration_ms / 1000)
        out.set("backupctl_backup_added_bytes", primary, float(backup.bytes_added))
    out.set("backupctl_suspicious", [name], 1.0 if name in view.suspicious else 0.0)

    _generations(out, job, view, backup)
    _copies(out, job, view, now=now)
    for repo in sorted({"primary"} | view.repositories("verify", name)):
        labels = [name, repo]
        last, ok = view.newest.get(("verify", name, repo)), view.success.get(("verify", name, repo))
        out.set("backupctl_verify_last_status", labels,
                1.0 if last is not None and last.status == "success" else 0.0)
        if last is not None:
            verified = read(VerifyDetails, last.details)
            out.set("backupctl_verify_last_run_timestamp_seconds", labels, last.finished_at)
            out.set("backupctl_verify_files_checked", labels, float(verified.files_checked))
            out.set("backupctl_verify_mismatches", labels, float(len(verified.mismatches)))
            out.set("backupctl_verify_coverage_ratio", labels,
                    float(verified.coverage) if verified.coverage is not None else None)
        if ok is not None:
            out.set("backupctl_verify_last_success_timestamp_seconds", labels, ok.finished_at)
        restore = view.restore.get((name, repo))
        if restore is not None:
            out.set("backupctl_restore_duration_seconds", labels,
                    ms_to_seconds(restore.restore_ms))
    recovered = view.success.get(("recovery", name, "primary"))
    if recovered is not None and recovered.restore_ms is not None:
        out.set("backupctl_recovery_duration_seconds", [name],
                ms_to_seconds(recovered.restore_ms))
    if job.databases:
        _databases(out, job, view)
    _proofs(out, job, view, now=now)


def _proofs(out: _Out, job: Job, view: StateView, *, now: float) -> None:
    """Proof freshness, from the state's index alone (no per-file work in a scrape)."""
    if job.verify.prove_within is None:
        return
    labels = [job.name]
    out.set("backupctl_proof_within_seconds", labels, float(job.verify.prove_within))
    fresh = view.proofs.get(job.name)
    if fresh is None:
        return
    out.set("backupctl_proof_files", labels, float(fresh.files))
    out.set("backupctl_files_unproven", labels, float(fresh.unproven))
    oldest = now - unix(fresh.oldest_proof) if fresh.oldest_proof else None
    out.set("backupctl_proof_oldest_seconds", labels,
            0.0 if not fresh.files else math.inf if fresh.unproven or oldest is None
            else max(0.0, oldest))
    waiting = now - unix(fresh.oldest_unproven) if fresh.oldest_unproven else None
    ages = [a for a in (oldest, waiting) if a is not None]
    out.set("backupctl_proof_age_seconds", labels, max(0.0, *ages) if ages else None)


def _newest_proofs(runs: Iterable[Run], *, restored: bool) -> dict[str, DatabaseProof]:
    """database → its proof in the newest of `runs` that tested it (restored: and timed
    its restore)."""
    found: dict[str, DatabaseProof] = {}
    for run in sorted(runs, key=lambda r: r.finished_at):
        for proof in read(VerifyDetails, run.details).databases:
            if not restored or proof.restore_ms is not None:
                found[proof.name] = proof
    return found


def _databases(out: _Out, job: Job, view: StateView) -> None:
    """Per database, from the newest restore tests of any repository (SPEC §10)."""
    name = job.name
    measured = [r for (j, _), r in view.restore.items() if j == name]
    newest = [r for (k, j, _), r in view.newest.items() if k == "verify" and j == name]
    tested = _newest_proofs([*measured, *newest], restored=False)
    timed = _newest_proofs(measured, restored=True)
    for database in job.databases:
        labels = [name, database.name]
        if (proof := tested.get(database.name)) is not None:
            out.set("backupctl_database_tables_checked", labels, float(proof.tables_checked))
            out.set("backupctl_database_row_mismatches", labels, float(len(proof.mismatches)))
        if (proof := timed.get(database.name)) is not None:
            out.set("backupctl_database_restore_duration_seconds", labels,
                    ms_to_seconds(proof.restore_ms))


def _generations(out: _Out, job: Job, view: StateView, backup: BackupDetails | None) -> None:
    name = job.name
    for repo in ["primary", *(c.name for c in job.copies)]:
        observed = view.generations.get((name, repo))
        if observed is not None:
            out.set("backupctl_generations", [name, repo], float(observed[0]))
            out.set("backupctl_generations_expected", [name, repo], float(observed[1]))
        elif repo == "primary" and backup is not None and backup.generations is not None:
            out.set("backupctl_generations", [name, repo], float(backup.generations))


def _copies(out: _Out, job: Job, view: StateView, *, now: float) -> None:
    name = job.name
    for copy in job.copies:
        labels = [name, copy.name]
        last, ok = view.newest.get(("copy", name, copy.name)), \
            view.success.get(("copy", name, copy.name))
        out.set("backupctl_copy_last_status", labels,
                1.0 if last is not None and last.status == "success" else 0.0)
        out.set("backupctl_copy_last_run_timestamp_seconds", labels,
                last.finished_at if last else None)
        if ok is not None:
            out.set("backupctl_copy_last_success_timestamp_seconds", labels, ok.finished_at)
            out.set("backupctl_copy_age_seconds", labels, max(0.0, now - ok.finished_at))
        if copy.kind == "immutable":
            probe = view.newest.get(("probe", name, copy.name))
            out.set("backupctl_immutable_probe_ok", labels,
                    1.0 if probe is not None and probe.status == "success" else 0.0)
            out.set("backupctl_immutable_probe_last_run_timestamp_seconds", labels,
                    probe.finished_at if probe else None)
