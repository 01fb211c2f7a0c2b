"""The inspector's report: evidence records (and the job configuration) → one data model.

The model is plain JSON-ready data (validated by docs/report.schema.json); render.py turns
it into HTML, PDF or CSV. Reports read the evidence chain and state tables only, never live
repositories. Dates are calendar days in the orchestrator's local time zone.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

from backupctl import __version__
from backupctl.clock import iso
from backupctl.config import calendar
from backupctl.config.validate import Config
from backupctl.errors import UsageError
from backupctl.evidence import audit, chain, proofs, reasons, summary
from backupctl.evidence.period import Period, slice_for
from backupctl.fmt import LANGS, local, moment, ms_to_seconds
from backupctl.log import mask
from backupctl.secrets import display_url
from backupctl.state import queries
from backupctl.state.db import Store
from backupctl.state.proofs import Freshness, freshness
from backupctl.state.records import (
    BackupDetails,
    ClearDetails,
    CopyDetails,
    DatabaseProof,
    DrillDetails,
    VerifyDetails,
    read,
)
from backupctl.state.recovery import RecoveryDetails

SCHEMA_ID = "backupctl-report/1"


@functools.cache
def mapping() -> dict[str, Any]:
    """backupctl/evidence/mapping.yaml: report items → requirements (editable data)."""
    text = resources.files("backupctl.evidence").joinpath("mapping.yaml").read_text("utf-8")
    data: dict[str, Any] = YAML(typ="safe").load(text)
    return data


@functools.cache
def labels() -> dict[str, dict[str, str]]:
    text = resources.files("backupctl.evidence").joinpath("labels.yaml").read_text("utf-8")
    data: dict[str, dict[str, str]] = YAML(typ="safe").load(text)
    return data


def load(store: Store) -> list[chain.Entry]:
    with store.read() as conn:
        return list(chain.entries(conn))


def build(*, config: Config, store: Store, period: Period, lang: str,
          entries: Sequence[chain.Entry] | None = None,
          now: datetime | None = None) -> dict[str, Any]:
    """The report data for `period` in `lang` (ja|en)."""
    if lang not in LANGS:
        raise UsageError(f"--lang must be ja or en, not {lang!r}")
    entries = load(store) if entries is None else entries
    checked = audit.of_config(config, store, entries=entries)
    verdict, key = checked.check, audit.keyring(config).own
    in_period_all = [e for e in slice_for(entries, period)
                     if period.contains(e.record.get("finished_at"))]
    # Notices (who was told what) are not runs of a job: counted in the summary only.
    in_period = [e for e in in_period_all if e.record["kind"] != "notice"]
    state = _state(store, period, config)
    names = sorted({*config.jobs, *(e.record["job"] for e in in_period)})
    generated = now or datetime.now(period.tz)
    jobs = [_job(name, config=config, period=period, lang=lang, state=state,
                 records=[e.record for e in in_period if e.record["job"] == name], now=generated)
            for name in names]
    findings = [{"job": j["job"], "text": text} for j in jobs for text in j["findings"]]
    if checked.problem is not None:
        findings.insert(0, {"job": None, "text": reasons.say(lang, "chain") + ": "
                            + checked.problem.message})
    return {
        "schema": SCHEMA_ID,
        "lang": lang,
        "title": _t(lang, "title"),
        "generated_at": generated.astimezone(period.tz).isoformat(timespec="seconds"),
        "backupctl_version": __version__,
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat(),
                   "utc_offset": period.offset(),
                   **({"timezone": name} if (name := getattr(period.tz, "key", None)) else {})},
        "chain": {"verified": checked.ok, "count": verdict.count, "head": verdict.head,
                  "head_seq": verdict.head_seq,
                  "problem": checked.problem.message if checked.problem else None,
                  "signed": verdict.signed, "unsigned": verdict.unsigned,
                  "exit_code": int(checked.status),
                  "key_fingerprint": key.fingerprint if key else None,
                  "public_key": key.pem if key else None},
        "records_in_period": len(in_period),
        "jobs": jobs,
        "findings": findings,
        "frameworks": [{"id": f["id"], "name": f["name"][lang], "primary": bool(f["primary"])}
                       for f in mapping()["frameworks"]],
        "mapping": _mapping(jobs, lang=lang, verified=checked.ok),
        "summary": summary.build(
            jobs=jobs, records=[e.record for e in in_period_all], history=entries,
            bounds=period.bounds(), chain_ok=checked.ok, chain_count=verdict.count,
            open_flags=state.open_flags, generations=state.generations,
            limits=_limits(config), lang=lang, words=labels()[lang],
            titles={item["id"]: item["title"][lang] for item in mapping()["items"]},
            now=iso(generated)),
    }


def _limits(config: Config) -> dict[str, float | None]:
    """job → hours a backup may age before it is stale (schedule gap + notify grace)."""
    grace = config.settings.notify.stale_grace
    out: dict[str, float | None] = {}
    for name, job_file in config.jobs.items():
        gap = calendar.interval(job_file.job.schedule.backup)
        out[name] = None if gap is None else round((gap + grace) / 3600, 2)
    return out


def _t(lang: str, key: str) -> str:
    return labels()[lang][key]


@dataclass(frozen=True)
class _State:
    open_flags: list[dict[str, Any]]
    media: list[dict[str, Any]]
    generations: dict[tuple[str, str], dict[str, Any]]
    orchestrators: dict[str, str]  # record id → the orchestrator of its run (runs table)
    proofs: dict[str, Freshness]  # verify.prove_within: the newest snapshot's, read now


def _state(store: Store, period: Period, config: Config) -> _State:
    since, until = period.bounds()
    with store.read() as conn:
        # in the report's time zone (its date is shown); as stored if a row's is not a time
        raised = [{"job": f.job, "reason": f.reason, "raised_at": w.astimezone(period.tz)
                   .isoformat() if (w := moment(f.raised_at)) else f.raised_at}
                  for f in queries.open_flags(conn)]
        labels_seen = [{"job": job, "copy": copy, "label": m.label,
                        "last_attached": m.last_attached}
                       for job, copy, m in queries.all_media(conn)]
        latest = {(g.job, g.repository): {"count": g.count, "expected": g.expected,
                                          "finding": g.finding}
                  for g in queries.newest_generations(conn)}
        ran = queries.evidence_orchestrators(conn, since=since, until=until)
        fresh = freshness(conn, [n for n, f in config.jobs.items() if f.job.verify.prove_within])
    return _State(raised, labels_seen, latest, ran, fresh)


def _orchestrator(r: dict[str, Any], state: _State) -> str | None:
    """Who ran the record's run: the record's own field (evidence v2), else the runs table."""
    named = r.get("orchestrator")
    return str(named) if named else state.orchestrators.get(str(r.get("id")))


def _medium(details: dict[str, Any]) -> str | None:
    medium = read(CopyDetails, details).medium
    return (medium.label or medium.fs_uuid) if medium is not None else None


def _job(name: str, *, config: Config, period: Period, lang: str, state: _State,
         records: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    job = config.jobs[name].job if name in config.jobs else None
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_kind.setdefault(r["kind"], []).append(r)
    rto = job.verify.rto if job else None
    months = [_month(month, records, period=period, job_rto=rto) for month in period.months()]
    copies = _copies(name, job=job, records=records, state=state)
    restore_tests = [{**_restore_test(r, period), "orchestrator": _orchestrator(r, state)}
                     for r in by_kind.get("verify", [])]
    drills = [{**_drill(r, period), "orchestrator": _orchestrator(r, state)}
              for r in by_kind.get("drill", [])]
    recoveries = [{**_recovery(r, period), "orchestrator": _orchestrator(r, state)}
                  for r in by_kind.get("recovery", [])]
    databases = _databases(job, records, period)
    events = [{**_event(r, period, lang), "orchestrator": _orchestrator(r, state)}
              for r in records if _is_event(r)]
    ran_by: dict[str, int] = {}
    for r in records:
        if (who := _orchestrator(r, state)) is not None:
            ran_by[who] = ran_by.get(who, 0) + 1
    out = {
        "job": name,
        "description": (job.description if job else None) or "",
        "in_config": job is not None,
        "host": job.host.display() if job else _last(records, "host") or "",
        "policy": job.generations.policy() if job else {},
        "generations_expected": (state.generations.get((name, "primary")) or {}).get(
            "expected"),
        "rto_seconds": rto,
        "months": months,
        "copies": copies,
        "restore_tests": restore_tests,
        "drills": drills,
        "recoveries": recoveries,
        "databases": databases,
        "events": events,
        "orchestrators": dict(sorted(ran_by.items())),  # records in the period per orchestrator
        "proof": proofs.statement(state.proofs.get(name), window=job.verify.prove_within
                                  if job else None, lang=lang, now=now, tz=period.tz),
    }
    out["totals"] = _totals(months)
    out["findings"] = _findings(out, job_known=job is not None, by_kind=by_kind, lang=lang,
                                state=state, name=name, tz=period.tz)
    return out


def _totals(months: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("backups", "backups_failed", "copies", "copies_failed", "probes", "probes_failed",
            "restore_tests", "restore_tests_failed", "files_checked", "mismatches", "drills",
            "drills_failed", "recoveries", "recoveries_failed", "suspicious", "clears")
    held = [m["generations"] for m in months if m["generations"] is not None]
    return {**{k: sum(m[k] for m in months) for k in keys},
            "generations": held[-1] if held else None}


def _last(records: list[dict[str, Any]], key: str) -> Any:
    return records[-1].get(key) if records else None


def _month(month: str, records: list[dict[str, Any]], *, period: Period,
           job_rto: int | None) -> dict[str, Any]:
    mine = [r for r in records if (d := period.local(r["finished_at"])) is not None
            and d.strftime("%Y-%m") == month]

    def of(kind: str) -> list[dict[str, Any]]:
        return [r for r in mine if r["kind"] == kind]

    def failed(kind: str) -> int:
        return sum(1 for r in of(kind) if r["result"] != "pass")

    backups = [read(BackupDetails, r["details"]) for r in of("backup")]
    held_known = [b.generations for b in backups if b.generations is not None]
    verifies = [read(VerifyDetails, r["details"]) for r in of("verify")]
    restore_times = [t for v in verifies if (t := ms_to_seconds(v.restore_ms)) is not None]
    rtos = [v.rto_seconds for v in verifies if v.rto_seconds is not None]
    return {
        "month": month,
        "backups": len(backups), "backups_failed": failed("backup"),
        "generations": int(held_known[-1]) if held_known else None,
        "copies": len(of("copy")), "copies_failed": failed("copy"),
        "probes": len(of("probe")), "probes_failed": failed("probe"),
        "restore_tests": len(verifies), "restore_tests_failed": failed("verify"),
        "files_checked": sum(v.files_checked for v in verifies),
        "mismatches": sum(len(v.mismatches) for v in verifies),
        "max_restore_seconds": max(restore_times) if restore_times else None,
        "rto_seconds": int(rtos[-1]) if rtos else job_rto,
        "drills": len(of("drill")), "drills_failed": failed("drill"),
        "recoveries": len(of("recovery")), "recoveries_failed": failed("recovery"),
        "suspicious": sum(1 for b in backups if b.suspicious),
        "clears": len(of("clear")),
    }


def _copies(name: str, *, job: Any, records: list[dict[str, Any]],
            state: _State) -> list[dict[str, Any]]:
    declared = {c.name: c for c in job.copies} if job else {}
    seen = {r["repository"] for r in records if r["kind"] in ("copy", "probe")}
    out = []
    for copy_name in sorted({*declared, *seen}):
        copy = declared.get(copy_name)
        runs = [r for r in records if r["kind"] == "copy" and r["repository"] == copy_name]
        probes = [r for r in records if r["kind"] == "probe" and r["repository"] == copy_name]
        good = [r for r in runs if r["result"] == "pass"]
        attached = [m for m in state.media if m["job"] == name and m["copy"] == copy_name]
        attached.sort(key=lambda m: m.get("last_attached") or "")
        generations_row = state.generations.get((name, copy_name))
        medium = next((m for r in reversed(runs) if (m := _medium(r["details"]))), None)
        out.append({
            "name": copy_name,
            "kind": copy.kind if copy else "",
            "max_age_seconds": copy.max_age if copy else None,
            "runs": len(runs), "failed": len(runs) - len(good),
            "last_success": good[-1]["finished_at"] if good else None,
            "medium": medium or (attached[-1]["label"] if attached else None),
            "last_attached": attached[-1].get("last_attached") if attached else None,
            "probes": len(probes),
            "probes_failed": sum(1 for r in probes if r["result"] != "pass"),
            "last_probe": probes[-1]["result"] if probes else None,
            "generations": generations_row["count"] if generations_row else None,
        })
    return out


def _error(r: dict[str, Any]) -> str | None:
    error = r["details"].get("error") if isinstance(r["details"], dict) else None
    return mask(str(error)) if error else None


def _restore_test(r: dict[str, Any], period: Period) -> dict[str, Any]:
    d = read(VerifyDetails, r["details"])
    return {
        "at": _local(r["finished_at"], period), "repository": r["repository"],
        "mode": d.mode if r["details"].get("mode") else "", "snapshot_id": r.get("snapshot_id"),
        "files_checked": d.files_checked, "mismatches": len(d.mismatches),
        "mismatch_paths": [mask(m.path) for m in d.mismatches[:20]],
        "restore_seconds": ms_to_seconds(d.restore_ms),
        "rto_seconds": float(d.rto_seconds) if d.rto_seconds is not None else None,
        "result": r["result"], "error": _error(r), "id": r["id"],
    }


def _drill(r: dict[str, Any], period: Period) -> dict[str, Any]:
    d = read(DrillDetails, r["details"])
    return {"at": _local(r["finished_at"], period), "operator": r["operator"],
            "restore_seconds": ms_to_seconds(d.restore_ms), "steps": len(d.steps),
            "result": r["result"], "id": r["id"]}


def _recovery(r: dict[str, Any], period: Period) -> dict[str, Any]:
    """A recovery onto a replacement server: where (masked), from which snapshot, by whom,
    and its measured time from start to a proven target."""
    d = read(RecoveryDetails, r["details"])
    return {"at": _local(r["finished_at"], period), "operator": r["operator"],
            "target": mask(display_url(d.target)), "snapshot_id": r.get("snapshot_id"),
            "restore_seconds": ms_to_seconds(d.restore_ms), "files": d.files,
            "mismatches": len(d.mismatches), "result": r["result"], "id": r["id"]}


def _proofs(r: dict[str, Any]) -> list[DatabaseProof]:
    model = DrillDetails if r["kind"] == "drill" else VerifyDetails
    return read(model, r["details"]).databases


def _databases(job: Any, records: list[dict[str, Any]], period: Period) -> list[dict[str, Any]]:
    """Per database (SPEC §10): restore tests in the period and the last proven restore
    (a full one: the dump restored into a throwaway server, every table's rows compared)."""
    tests = [(r, p) for r in records if r["kind"] in ("verify", "drill") for p in _proofs(r)]
    names = [d.name for d in job.databases] if job else []
    names += sorted({p.name for _, p in tests} - set(names))
    out = []
    for name in names:
        mine = [(r, p) for r, p in tests if p.name == name]
        proven = [(r, p) for r, p in mine if p.mode == "full" and p.result == "proven"]
        last = None
        if proven:
            r, p = proven[-1]
            last = {"at": _local(r["finished_at"], period), "kind": r["kind"],
                    "repository": r["repository"], "snapshot_id": r.get("snapshot_id"),
                    "tables": p.tables_checked, "rows": p.rows_restored,
                    "restore_seconds": ms_to_seconds(p.restore_ms), "id": r["id"]}
        out.append({"name": name, "tests": len(mine),
                    "failed": sum(1 for _, p in mine if p.result != "proven"),
                    "last_result": mine[-1][1].result if mine else None,
                    "last_proven_restore": last})
    return out


def _is_event(r: dict[str, Any]) -> bool:
    return r["kind"] == "clear" or r["result"] != "pass" or (
        r["kind"] == "backup" and bool(read(BackupDetails, r["details"]).suspicious))


def _event(r: dict[str, Any], period: Period, lang: str) -> dict[str, Any]:
    suspicious = read(BackupDetails, r["details"]).suspicious if r["kind"] == "backup" else []
    if r["kind"] == "clear":
        what = read(ClearDetails, r["details"]).reason
    elif suspicious:
        what = _t(lang, "suspicious") + ": " + "; ".join(suspicious)
    else:
        what = _error(r) or ""
    return {"at": _local(r["finished_at"], period), "kind": r["kind"],
            "repository": r["repository"], "operator": r["operator"], "result": r["result"],
            "what": mask(what)[:500], "id": r["id"]}


def _local(stamp: str, period: Period) -> str:
    moment = period.local(stamp)
    return moment.isoformat(timespec="seconds") if moment is not None else stamp  # as stored


def _findings(job: dict[str, Any], *, job_known: bool, by_kind: dict[str, list[dict[str, Any]]],
              lang: str, state: _State, name: str, tz: tzinfo) -> list[str]:
    """What needs action, in the words of the summary and the digest (reasons.yaml), with
    the detail an inspector needs (when, which repository, the tripwire's reason)."""
    t = functools.partial(reasons.say, lang)
    out = []
    if not job_known:
        out.append(t("not_configured"))
    backups = by_kind.get("backup", [])
    if not backups:
        out.append(t("no_backup"))
    elif backups[-1]["result"] != "pass":
        out.append(t("backup_failed"))
    if job_known and (few := reasons.generations(lang, job["totals"]["generations"],
                                                 job["policy"])):
        out.append(few)
    verifies = by_kind.get("verify", [])
    if not verifies:
        out.append(t("no_restore"))
    elif verifies[-1]["result"] != "pass":
        out.append(t("restore_failed"))
    if job["proof"] is not None and not job["proof"]["met"]:
        out.append(job["proof"]["statement"])
    for database in job["databases"]:
        if job_known and database["last_proven_restore"] is None:
            out.append(t("database_unproven", database=database["name"]))
    if job_known and not any(c["kind"] in ("offline", "immutable") for c in job["copies"]):
        out.append(t("no_offline"))
    for copy in job["copies"]:
        if copy["kind"] and copy["runs"] == 0:
            out.append(t("copy_never", copy=copy["name"]))
        if copy["last_probe"] == "fail":
            out.append(t("probe", copy=copy["name"]))
    for flag in state.open_flags:
        if flag["job"] == name:
            out.append(t("flag", since=local(flag["raised_at"], tz)) + ": "
                       + mask(str(flag["reason"])))
    for (job_name, repository), row in sorted(state.generations.items()):
        if job_name == name and row.get("finding"):
            out.append(t("generations_lost", repository=repository) + f" ({row['finding']})")
    return out


def _mapping(jobs: list[dict[str, Any]], *, lang: str, verified: bool) -> list[dict[str, Any]]:
    keys = {"backup": "backups", "copy": "copies", "probe": "probes", "verify": "restore_tests",
            "drill": "drills", "recovery": "recoveries", "suspicious": "suspicious",
            "clear": "clears"}
    totals = {kind: sum(j["totals"][key] for j in jobs) for kind, key in keys.items()}
    out = []
    for item in mapping()["items"]:
        kinds = list(item["evidence"])
        out.append({
            "id": item["id"], "title": item["title"][lang], "shows": item["shows"][lang],
            "evidence": kinds,
            "count": (1 if verified else 0) if kinds == ["chain"]
            else sum(totals.get(k, 0) for k in kinds),
            "requirements": {
                framework: [{"ref": str(req["ref"]), "text": req["text"][lang]}
                            for req in reqs]
                for framework, reqs in item["requirements"].items()},
        })
    return out
