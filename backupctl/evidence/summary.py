"""The one-page management summary: a verdict per guideline item, a chart per job, findings.

Built from the same evidence records and state as the inspector's report (report.py calls
`build` and stores the result as the model's `summary` part), so the first page and the
tables behind it never disagree. Every text is from labels.yaml filled with counts, dates,
job and copy names: no file names from a server, no free-text error (SPEC §7, §8).

Verdicts are strict: an item is 達成 (achieved) only when every configured job shows it in
the period; anything unproven is 要対応 (action needed), and says why: the reasons
(reasons.py, one wording with the report's findings and the digest) decide the verdict, are
shown beside it and are the findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from backupctl.evidence import chain, reasons
from backupctl.evidence.reasons import Reason
from backupctl.fmt import moment, ms_to_seconds
from backupctl.state.records import Proof, read

MAX_CHART_JOBS = 6
MAX_FINDINGS = 8


def _verdict(words: dict[str, str], item: str, why: list[str], evidence: str,
             ) -> dict[str, Any]:
    """Achieved exactly when there is no reason against it."""
    return {"id": item, "achieved": not why,
            "verdict": words["mg_action"] if why else words["mg_achieved"],
            "evidence": evidence, "reasons": why}


def _backup_points(records: Sequence[dict[str, Any]], job: str, *, low: str,
                   high: str) -> list[list[Any]]:
    """[time, hours since the newest successful backup] at each backup and at both ends."""
    times = sorted(str(r["finished_at"]) for r in records
                   if r["kind"] == "backup" and r["job"] == job and r["result"] == "pass"
                   and str(r["finished_at"]) < high and moment(r["finished_at"]) is not None)
    before = [s for s in times if s < low]
    inside = [s for s in times if s >= low]
    points: list[list[Any]] = []
    last = before[-1] if before else None

    def hours(a: str, b: str) -> float:
        return round((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
                     / 3600, 2)

    if last is not None:
        points.append([low, hours(last, low)])
    for stamp in inside:
        if last is not None:
            points.append([stamp, hours(last, stamp)])
        points.append([stamp, 0.0])
        last = stamp
    if last is not None:
        points.append([high, hours(last, high)])
    return points


def _restore_points(records: Sequence[dict[str, Any]], job: str) -> list[list[Any]]:
    """[time, restore seconds, passed within the RTO] of the period's timed restores (full
    tests, drills, recoveries), as each record decided it."""
    out: list[list[Any]] = []
    for r in records:
        if r["job"] != job or r["kind"] not in ("verify", "drill", "recovery"):
            continue
        proof = read(Proof, r["details"])
        seconds = ms_to_seconds(proof.restore_ms)
        if seconds is not None:
            out.append([str(r["finished_at"]), round(seconds, 1),
                        r["result"] == "pass" and not proof.rto_exceeded])
    return out


def _facts(j: dict[str, Any], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The newest backup's and restore test's result in the period, and whether the newest
    timed restore exceeded its RTO (as that record decided)."""
    mine = [r for r in records if r["job"] == j["job"]]
    backups = [r for r in mine if r["kind"] == "backup"]
    tests = [r for r in mine if r["kind"] == "verify"]
    timed = [proof for r in tests if (proof := read(Proof, r["details"])).restore_ms is not None]
    return {"last_backup_result": backups[-1]["result"] if backups else None,
            "last_restore_result": tests[-1]["result"] if tests else None,
            "rto_exceeded": bool(timed) and bool(timed[-1].rto_exceeded)}


def _reasons(configured: Sequence[dict[str, Any]], *, lang: str,
             open_flags: Sequence[dict[str, Any]],
             generations: dict[tuple[str, str], dict[str, Any]]) -> dict[str, list[Reason]]:
    """job → why it needs action, per guideline item."""
    return {j["job"]: reasons.of_job(
        j, lang=lang, open_flags=open_flags,
        lost=[repo for (job, repo), row in sorted(generations.items())
              if job == j["job"] and row.get("finding")]) for j in configured}


def _verdicts(jobs: Sequence[dict[str, Any]], configured: Sequence[dict[str, Any]], *,
              why: dict[str, list[Reason]], lang: str, words: dict[str, str],
              titles: dict[str, str], chain_ok: bool, chain_count: int,
              open_flags: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One verdict per guideline item: achieved only when no configured job has a reason
    against it; the reasons say why not ("job: reason")."""
    n = len(configured)

    def count(key: str) -> int:
        return sum(j["totals"][key] for j in jobs)

    def against(item: str) -> list[str]:
        if n == 0:
            return [reasons.say(lang, "no_jobs")]
        return reasons.shown([f"{job}: {text}" for job, found in why.items()
                              for it, text in found if it == item], lang)

    def ok(item: str) -> int:
        return sum(1 for found in why.values() if not any(it == item for it, _ in found))

    drills_passed = count("drills") - count("drills_failed")
    # recoveries onto a replacement server (SPEC §11): told beside the drills when any ran
    recoveries = sum(j["totals"].get("recoveries", 0) for j in jobs)
    failed = sum(j["totals"].get("recoveries_failed", 0) for j in jobs)
    recovered = words["mg_ev_recoveries"].format(
        count=recoveries, passed=recoveries - failed) if recoveries else ""
    # what the evidence line says: the newest backup succeeded (generations are a reason)
    newest_ok = sum(1 for j in configured if j["totals"]["backups"]
                    and j["last_backup_result"] == "pass")
    verdicts = [
        _verdict(words, "backups", against("backups"), words["mg_ev_backups"].format(
            ok=newest_ok, jobs=n, count=count("backups"), failed=count("backups_failed"))),
        _verdict(words, "offline-copies", against("offline-copies"),
                 words["mg_ev_copies"].format(ok=ok("offline-copies"), jobs=n,
                                              count=count("copies"), probes=count("probes"),
                                              probes_failed=count("probes_failed"))),
        _verdict(words, "restore-tests", against("restore-tests"),
                 words["mg_ev_restores"].format(ok=ok("restore-tests"), jobs=n,
                                                count=count("restore_tests"),
                                                files=count("files_checked"),
                                                mismatches=count("mismatches"))),
        _verdict(words, "drills", [] if drills_passed > 0 else [reasons.say(lang, "no_drill")],
                 words["mg_ev_drills"].format(count=count("drills"), passed=drills_passed)
                 + recovered),
        _verdict(words, "tripwires", reasons.shown(
            [f"{flag['job']}: " + reasons.say(lang, "flag", since=str(flag["raised_at"])[:10])
             for flag in open_flags], lang),
            words["mg_ev_tripwires"].format(suspicious=count("suspicious"),
                                            clears=count("clears"), open=len(open_flags))),
        _verdict(words, "evidence-integrity", [] if chain_ok else [reasons.say(lang, "chain")],
                 words["mg_ev_chain_ok"].format(count=chain_count) if chain_ok
                 else words["mg_ev_chain_bad"]),
    ]
    for v in verdicts:
        v["title"] = titles.get(v["id"], v["id"])
    return verdicts


def build(*, jobs: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]],
          history: Sequence[chain.Entry], bounds: tuple[str, str], chain_ok: bool,
          chain_count: int, open_flags: Sequence[dict[str, Any]],
          generations: dict[tuple[str, str], dict[str, Any]], limits: dict[str, float | None],
          lang: str, words: dict[str, str], titles: dict[str, str], now: str,
          ) -> dict[str, Any]:
    """The summary part of the report model.

    `jobs` are report.py's job entries, `records` the period's records, `history` every
    record (backup age reaches back before the period), `limits` job → hours a backup may
    age (schedule interval + grace) or None."""
    low, high = bounds
    high = min(high, now)
    # The report's job entries stay as they are (docs/report.schema.json): facts go beside.
    configured = [{**j, **_facts(j, records)} for j in jobs if j["in_config"]]
    why = _reasons(configured, lang=lang, open_flags=open_flags, generations=generations)
    verdicts = _verdicts(jobs, configured, why=why, lang=lang, words=words, titles=titles,
                         chain_ok=chain_ok, chain_count=chain_count, open_flags=open_flags)
    all_records = [e.record for e in history]
    findings: list[dict[str, str | None]] = []
    if not chain_ok:
        findings.append({"job": None, "description": None, "text": reasons.say(lang, "chain")})
    if not next(v for v in verdicts if v["id"] == "drills")["achieved"]:
        findings.append({"job": None, "description": None,
                         "text": reasons.say(lang, "no_drill")})
    charts = []
    for j in configured:
        texts = [text for _, text in why[j["job"]]]
        findings += [{"job": j["job"], "description": j["description"] or None, "text": text}
                     for text in texts]
        charts.append({
            "job": j["job"], "description": j["description"], "needs_action": bool(texts),
            "rto_seconds": j["rto_seconds"], "limit_hours": limits.get(j["job"]),
            "backup_age": _backup_points(all_records, j["job"], low=low, high=high),
            "restores": _restore_points(records, j["job"])})
    charts.sort(key=lambda c: (not c["needs_action"], c["job"]))
    notices = [r for r in records if r["kind"] == "notice"]
    return {
        "verdicts": verdicts,
        "achieved": all(v["achieved"] for v in verdicts),
        "charts": charts[:MAX_CHART_JOBS],
        "more_jobs": max(0, len(charts) - MAX_CHART_JOBS),
        "period_start": low, "period_end": high,
        "findings": findings[:MAX_FINDINGS],
        "more_findings": max(0, len(findings) - MAX_FINDINGS),
        "notices": {"sent": len(notices),
                    "failed": sum(1 for r in notices if r["result"] != "pass")},
    }
