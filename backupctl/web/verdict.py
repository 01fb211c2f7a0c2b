"""The status page's verdicts: what needs action per job, how badly, and in which order.

One small rule per problem, over the same `StateView` the metrics expose (state/view.py:
the newest and newest successful run per job, kind and repository), the stale rule of
`notify check` (`notify.stale.overdue_seconds`) and the safe reason lines of mails
(`notify.reason`: categories and counts, never an error's text), so the page never
contradicts an alert, a mail or `status`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from backupctl.config.schema import Copy, Job
from backupctl.fmt import duration
from backupctl.notify.model import FinishedRun, RunStatus
from backupctl.notify.reason import reason
from backupctl.notify.stale import overdue_seconds
from backupctl.state.proofs import standing
from backupctl.state.view import Run, StateView
from backupctl.web.words import say

Level = Literal["suspicious", "failing", "overdue", "attention", "ok"]
LEVELS: tuple[Level, ...] = ("suspicious", "failing", "overdue", "attention", "ok")  # worst 1st
SYMBOLS: Mapping[Level, str] = {"suspicious": "⚠", "failing": "✗", "overdue": "◷",
                                "attention": "!", "ok": "✓"}


@dataclass(frozen=True)
class Problem:
    level: Level
    text: str  # words.yaml `problem.KEY`, filled with names, counts and durations only
    key: str


@dataclass(frozen=True)
class Timing:
    """What a job's schedules allow: the longest gaps (None: unknown) and the grace."""

    backup_interval: int | None = None
    verify_interval: int | None = None
    grace: int = 6 * 3600


@dataclass(frozen=True)
class Judge:
    """The facts every rule of one job reads."""

    job: Job
    view: StateView
    now: datetime
    lang: str
    timing: Timing = field(default_factory=Timing)

    def newest(self, kind: str, repository: str = "primary") -> Run | None:
        return self.view.newest.get((kind, self.job.name, repository))

    def success(self, kind: str, repository: str = "primary") -> Run | None:
        return self.view.success.get((kind, self.job.name, repository))

    def problem(self, level: Level, key: str, **params: object) -> Problem:
        return Problem(level=level, text=say(self.lang, f"problem.{key}", **params), key=key)

    def reason(self, run: Run, kind: str, repository: str) -> str:
        """The mails' one safe line for a run that did not succeed."""
        try:
            details: dict[str, Any] = json.loads(run.details)
        except ValueError:
            details = {}
        finished = FinishedRun(
            job=self.job.name, kind=kind, repository=repository,
            status=cast(RunStatus, run.status), exit_code=run.exit_code or 1, error=run.error,
            started_at="", finished_at="", orchestrator=run.orchestrator)
        return reason(finished, details if isinstance(details, dict) else {}, self.lang)

    def late(self, run: Run, interval: int | None) -> int:
        """Seconds past due since `run` succeeded (≤ 0: in time or unknown schedule)."""
        if interval is None:
            return 0
        since = datetime.fromtimestamp(run.finished_at, UTC)
        return overdue_seconds(since, interval=interval, grace=self.timing.grace, now=self.now)


def newest_of(runs: Iterable[Run]) -> Run | None:
    return max(runs, key=lambda r: r.finished_at, default=None)


def verify_runs(view: StateView, job: Job, *, success: bool) -> dict[str, Run]:
    """repository → the newest (or newest successful) restore test of the job, of the
    repositories it is configured with (the keys the view was read for)."""
    table = view.success if success else view.newest
    found = {repo: table.get(("verify", job.name, repo))
             for repo in ("primary", *(c.name for c in job.copies))}
    return {repo: run for repo, run in found.items() if run is not None}


def backup_problems(j: Judge) -> list[Problem]:
    newest, good = j.newest("backup"), j.success("backup")
    if newest is None:
        return [j.problem("overdue", "never_backed_up")]
    found = []
    if newest.status != "success":
        found.append(j.problem("failing", "backup_failed",
                               reason=j.reason(newest, "backup", "primary")))
    if good is not None and (late := j.late(good, j.timing.backup_interval)) > 0:
        found.append(j.problem("overdue", "backup_overdue", late=duration(late, j.lang)))
    return found


def proof_problems(j: Judge) -> list[Problem]:
    """A restore test of any repository proves the job restorable (as `notify check`)."""
    newest_by_repo = verify_runs(j.view, j.job, success=False)
    good = newest_of(verify_runs(j.view, j.job, success=True).values())
    found = []
    failed = {repo: run for repo, run in newest_by_repo.items() if run.status != "success"}
    for repo, run in sorted(failed.items()):
        found.append(j.problem("failing", "proof_failed", repository=repo,
                               reason=j.reason(run, "verify", repo)))
    if good is None and not failed:
        found.append(j.problem("attention", "never_proven"))
    elif good is not None and (late := j.late(good, j.timing.verify_interval)) > 0:
        found.append(j.problem("overdue", "proof_overdue", late=duration(late, j.lang)))
    return found


def copy_problems(j: Judge, copy: Copy) -> list[Problem]:
    newest, good = j.newest("copy", copy.name), j.success("copy", copy.name)
    found = []
    if newest is not None and newest.status != "success":
        found.append(j.problem("failing", "copy_failed", copy=copy.name,
                               reason=j.reason(newest, "copy", copy.name)))
    if good is None and not found:
        found.append(j.problem("overdue", "copy_never", copy=copy.name))
    elif good is not None and (age := j.now.timestamp() - good.finished_at) > copy.max_age:
        found.append(j.problem("overdue", "copy_old", copy=copy.name,
                               age=duration(age, j.lang),
                               max_age=duration(copy.max_age, j.lang)))
    if copy.kind == "immutable":
        probe = j.newest("probe", copy.name)
        if probe is None:
            found.append(j.problem("attention", "probe_never", copy=copy.name))
        elif probe.status != "success":
            found.append(j.problem("failing", "probe_failed", copy=copy.name))
    return found


def generation_problems(j: Judge) -> list[Problem]:
    found = []
    for repo in ["primary", *(c.name for c in j.job.copies)]:
        held, expected = j.view.generations.get((j.job.name, repo), (0, 0))
        if held < expected:
            found.append(j.problem("attention", "generations", repository=repo, held=held,
                                   expected=expected))
    return found


def freshness_problems(j: Judge) -> list[Problem]:
    """verify.prove_within (SPEC §12): a file waited longer than the window for a proof
    (the rule of the BackupctlProofStale alert)."""
    window, fresh = j.job.verify.prove_within, j.view.proofs.get(j.job.name)
    if window is None or fresh is None or standing(fresh, window=window, now=j.now).met:
        return []
    return [j.problem("attention", "proof_stale", window=duration(window, j.lang),
                      unproven=fresh.unproven, files=fresh.files)]


def problems(j: Judge) -> list[Problem]:
    """Everything that needs action for one job, worst first."""
    found = [j.problem("suspicious", "suspicious")] if j.job.name in j.view.suspicious else []
    found += backup_problems(j) + proof_problems(j)
    for copy in j.job.copies:
        found += copy_problems(j, copy)
    found += generation_problems(j) + freshness_problems(j)
    return sorted(found, key=lambda p: LEVELS.index(p.level))


def level_of(found: Sequence[Problem]) -> Level:
    """The job's level: its worst problem's, `ok` without any."""
    return min((p.level for p in found), key=LEVELS.index, default="ok")


def ordered(items: Iterable[tuple[Level, str]]) -> list[tuple[Level, str]]:
    """(level, job) worst first, then by name: suspicious and failing jobs lead the page."""
    return sorted(items, key=lambda item: (LEVELS.index(item[0]), item[1]))


@dataclass(frozen=True)
class SiteVerdict:
    level: Level
    text: str


def site(levels: Sequence[Level], *, lang: str, readable: bool = True) -> SiteVerdict:
    """One line for the whole site: all proven, or how many jobs need action and why."""
    if not readable:
        return SiteVerdict("failing", say(lang, "site.unreadable"))
    if not levels:
        return SiteVerdict("attention", say(lang, "site.no_jobs"))
    bad = [lv for lv in levels if lv != "ok"]
    if not bad:
        return SiteVerdict("ok", say(lang, "site.ok"))
    counts = [(lv, bad.count(lv)) for lv in LEVELS if lv in bad]
    sep = "、" if lang == "ja" else ", "
    detail = sep.join(say(lang, "site.detail_item", level=say(lang, f"level.{lv}"), count=n)
                      for lv, n in counts)
    return SiteVerdict(level_of([Problem(lv, "", "") for lv in bad]),
                       say(lang, "site.action", count=len(bad), detail=detail))
