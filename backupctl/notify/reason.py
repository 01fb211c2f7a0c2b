"""One safe line saying why a run did not succeed: categories and counts, never raw text.

A run's error text can name files of the backed-up server (patient data: a mismatching file,
a canary path, a failing hook's output) and must never reach an e-mail or a chat. What is
shown comes from texts.yaml, filled with counts, durations and configuration names (job,
copy) alone. The failure's category (`errors.Reason`) is decided where the failure happened
and stored with the run (`runs.reason`); only runs recorded before that column existed are
classified by keywords of backupctl's own messages (`classify`).
"""

from __future__ import annotations

import re
from typing import Any

from backupctl.fmt import duration, ms_to_seconds
from backupctl.notify.model import FinishedRun
from backupctl.notify.texts import kind_label, t
from backupctl.state.records import BackupDetails, Proof, read

# (category, pattern over the lower-cased error); the first match wins.
_CATEGORIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("config", re.compile(r"invalid configuration|configuration is invalid|validate")),
    ("host_key", re.compile(r"host key|known_hosts|backupctl trust")),
    ("password", re.compile(r"wrong password|no key found|password file")),
    ("locked", re.compile(r"\block(ed)?\b|already running")),
    ("timeout", re.compile(r"timed out|timeout")),
    ("unreachable", re.compile(r"cannot connect|connection .*(lost|refused|reset)|"
                               r"authentication|unreachable|no route|name or service")),
    ("space", re.compile(r"free space|no space left")),
    ("repository", re.compile(r"no repository|repository .*does not exist|backupctl init|"
                              r"unable to open config")),
    ("check", re.compile(r"restic check")),
    ("hook", re.compile(r"\b(before|after)\b.*(command|hook|failed)")),
)


def classify(error: str | None) -> str | None:
    """The category of an older run's failure message (a texts.yaml `reason` key), or None:
    for rows recorded without `runs.reason`."""
    text = (error or "").lower()
    for category, pattern in _CATEGORIES:
        if pattern.search(text):
            return category
    return None


def suspicious_counts(details: dict[str, Any]) -> tuple[int, int, int] | None:
    """(signs, changed canaries, change bursts) of a backup that raised the tripwire."""
    reasons = read(BackupDetails, details).suspicious
    if not reasons:
        return None
    canaries = sum(1 for r in reasons if "canary" in str(r).lower())
    return len(reasons), canaries, len(reasons) - canaries


def reason(run: FinishedRun, details: dict[str, Any], lang: str) -> str:
    """Why `run` ended as it did, in one safe line of `lang`."""
    if run.ok:
        return t(lang, "reason.recovered", kind=kind_label(lang, run.kind))
    if run.status == "interrupted":
        return t(lang, "reason.interrupted")
    counts = suspicious_counts(details) if run.kind == "backup" else None
    if counts is not None:
        return t(lang, "reason.suspicious", count=counts[0], canaries=counts[1],
                 spikes=counts[2])
    if run.kind == "probe" and run.status == "bad_data":
        return t(lang, "reason.probe", repository=run.repository)
    if run.kind in ("verify", "drill", "recovery") and run.status == "bad_data":
        return _bad_data(details, lang)
    category = run.reason or classify(run.error)
    if category is not None:
        return t(lang, f"reason.{category}")
    if run.status == "bad_data":
        return t(lang, "reason.generic_bad_data")
    return t(lang, "reason.generic_failed", exit_code=run.exit_code)


def _bad_data(details: dict[str, Any], lang: str) -> str:
    proof = read(Proof, details)
    parts = []
    mismatches = len(proof.mismatches)
    if mismatches:
        parts.append(t(lang, "reason.mismatches", count=mismatches))
    restore, rto = ms_to_seconds(proof.restore_ms), proof.rto_seconds
    if proof.rto_exceeded and restore is not None and rto is not None:
        parts.append(t(lang, "reason.rto", restore=duration(restore, lang),
                       rto=duration(rto, lang)))
    failures = len(proof.failures)
    if not parts and failures:
        parts.append(t(lang, "reason.verify_failures", count=failures))
    if not parts:
        parts.append(t(lang, "reason.generic_bad_data"))
    return ("、" if lang == "ja" else "; ").join(parts)
