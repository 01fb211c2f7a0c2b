"""What one job's card and 30-day strip say, as text ready to print (ja or en).

Times are local to `timezone` to the minute with their age (`fmt`), states are words and
symbols. Only names from the configuration (job, copy, orchestrator), counts, times and
safe reason lines reach a card: no repository URL, no file name, no error text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from markupsafe import Markup

from backupctl.config.schema import Job
from backupctl.fmt import duration, local_ago, ms_to_seconds
from backupctl.state.records import VerifyDetails, read
from backupctl.state.view import Outcome, Run
from backupctl.web.schedules import Schedules
from backupctl.web.verdict import (
    SYMBOLS,
    Judge,
    Level,
    Problem,
    level_of,
    newest_of,
    problems,
    verify_runs,
)
from backupctl.web.words import say

DAYS = 30
# the strip's restore row: restore tests, drills (also onto a spare server, drill --to) and
# recoveries onto a replacement server, each proven where it restored
RESTORE_KINDS = ("verify", "drill", "recovery")
DAY_SYMBOLS = {"ok": "✓", "failed": "✗", "mixed": "!", "none": "·"}


@dataclass(frozen=True)
class Freshness:
    """SPEC §12 (proof freshness), shown once the state records it."""

    unproven: int
    oldest: str


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    state: str = ""  # a level or a run status: a CSS hint only, the words say it


_CELL = Markup('<li class="d-{0}" title="{1}"><span aria-hidden="true">{2}</span>'
              '<span class="sr">{1}</span></li>')


@dataclass(frozen=True)
class Card:
    job: str
    description: str | None
    host: str
    level: Level
    level_word: str
    symbol: str
    problems: list[Problem]
    facts: list[Fact]
    copies: list[Fact]
    next_runs: list[Fact]
    strip: list[tuple[str, Markup]]  # (row label, its days as <li> cells)
    freshness: Freshness | None = None
    running: str | None = None


@dataclass(frozen=True)
class Context:
    """What every card of one page shares."""

    now: datetime
    tz: tzinfo
    lang: str
    schedules: Schedules
    grace: int
    running: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # job → lease
    # (day, state) → its cell: every job's strip shows the same 30 days, so a 100-job page
    # escapes and formats at most 120 distinct cells instead of 6 000
    cells: dict[tuple[date, str], Markup] = field(default_factory=dict)

    def cell(self, day: date, state: str) -> Markup:
        found = self.cells.get((day, state))
        if found is None:
            label = f"{day.isoformat()} {say(self.lang, f'strip.{state}')}"
            found = self.cells[(day, state)] = _CELL.format(state, label, DAY_SYMBOLS[state])
        return found

    def when(self, run: Run | None) -> str:
        if run is None:
            return say(self.lang, "card.never")
        return local_ago(datetime.fromtimestamp(run.finished_at, UTC), now=self.now,
                         tz=self.tz, lang=self.lang)

    def status(self, run: Run) -> str:
        return say(self.lang, f"status.{run.status}")


def card(job: Job, judge: Judge, days: Sequence[Outcome], ctx: Context) -> Card:
    found = problems(judge)
    level = level_of(found)
    lease = ctx.running.get(job.name)
    return Card(
        job=job.name, description=job.description, host=job.host.display(), level=level,
        level_word=say(ctx.lang, f"level.{level}"), symbol=SYMBOLS[level], problems=found,
        facts=_facts(judge, ctx), copies=_copies(judge, ctx), next_runs=_next(job, ctx),
        strip=strip(days, job=job.name, ctx=ctx), freshness=_freshness(judge, ctx),
        running=say(ctx.lang, "card.running", orchestrator=lease[0],
                    kind=say(ctx.lang, f"kind.{lease[1]}"), since=local_ago(
                        lease[2], now=ctx.now, tz=ctx.tz, lang=ctx.lang))
        if lease is not None else None)


def _facts(j: Judge, ctx: Context) -> list[Fact]:
    lang = ctx.lang
    newest, good = j.newest("backup"), j.success("backup")
    facts = [Fact(say(lang, "card.last_backup"), ctx.when(newest) + (
        f" — {ctx.status(newest)}" if newest is not None else ""),
        newest.status if newest is not None else "none")]
    if newest is not None and newest.status != "success":
        facts.append(Fact(say(lang, "card.last_success"), ctx.when(good)))
    proof = verify_runs(j.view, j.job, success=True)
    best = newest_of(proof.values())
    value = ctx.when(best)
    if best is not None:
        repo = next(r for r, run in proof.items() if run is best)
        mode = read(VerifyDetails, best.details).mode
        value += " — " + say(lang, "card.proof_in", mode=say(lang, f"card.mode.{mode}"),
                             repository=repo)
    facts.append(Fact(say(lang, "card.last_proof"), value, "success" if best else "none"))
    if (recovered := j.newest("recovery")) is not None:
        facts.append(_recovery(recovered, ctx))
    if newest is not None and newest.orchestrator:
        facts.append(Fact(say(lang, "card.runs_on"), newest.orchestrator))
    return facts


def _freshness(j: Judge, ctx: Context) -> Freshness | None:
    """verify.prove_within: unproven files and the oldest proof, once a backup recorded them."""
    fresh = j.view.proofs.get(j.job.name) if j.job.verify.prove_within else None
    if fresh is None:
        return None
    oldest = local_ago(fresh.oldest_proof, now=ctx.now, tz=ctx.tz, lang=ctx.lang) \
        if fresh.oldest_proof else say(ctx.lang, "card.never")
    return Freshness(unproven=fresh.unproven, oldest=oldest)


def _recovery(run: Run, ctx: Context) -> Fact:
    """The newest recovery onto a replacement server: when, its result, the measured time
    from start to a proven target (the real RTO)."""
    value = f"{ctx.when(run)} — {ctx.status(run)}"
    if (seconds := ms_to_seconds(run.restore_ms)) is not None:
        value += " — " + say(ctx.lang, "card.recovery_time",
                             time=duration(seconds, ctx.lang))
    return Fact(say(ctx.lang, "card.last_recovery"), value, run.status)


def _copies(j: Judge, ctx: Context) -> list[Fact]:
    lang, out = ctx.lang, []
    for copy in j.job.copies:
        newest, good = j.newest("copy", copy.name), j.success("copy", copy.name)
        parts = [f"{say(lang, 'card.last_success')} {ctx.when(good)}"]
        if newest is not None and newest.status != "success":
            parts.append(ctx.status(newest))
        parts.append(say(lang, "card.max_age", max_age=duration(copy.max_age, lang)))
        if copy.kind == "immutable":
            probe = j.newest("probe", copy.name)
            parts.append(say(lang, "card.probe_none") if probe is None else
                         say(lang, "card.probe_ok", when=ctx.when(probe))
                         if probe.status == "success" else say(lang, "card.probe_bad"))
        label = f"{copy.name}（{say(lang, f'card.copy_kind.{copy.kind}')}）" if lang == "ja" \
            else f"{copy.name} ({say(lang, f'card.copy_kind.{copy.kind}')})"
        out.append(Fact(label, " — ".join(parts),
                        newest.status if newest is not None else "none"))
    return out


def _next(job: Job, ctx: Context) -> list[Fact]:
    wanted = [("next_backup", job.schedule.backup), ("next_verify", job.schedule.verify)]
    if job.schedule.copy_ is not None and job.copies:
        wanted.append(("next_copy", job.schedule.copy_))
    out = []
    for key, expr in wanted:
        when = ctx.schedules.next(expr, ctx.now)
        out.append(Fact(say(ctx.lang, f"card.{key}"),
                        local_ago(when, now=ctx.now, tz=ctx.tz, lang=ctx.lang)
                        if when is not None else say(ctx.lang, "card.unknown")))
    return out


def first_day(now: datetime, tz: tzinfo) -> date:
    return now.astimezone(tz).date() - timedelta(days=DAYS - 1)


def strip(outcomes: Sequence[Outcome], *, job: str, ctx: Context) -> list[tuple[str, Markup]]:
    """Per row (backups, restore tests): each local day of the last DAYS, oldest first, as
    list items saying the date and the outcome in words (the symbol is for the eye)."""
    start = first_day(ctx.now, ctx.tz)
    days = [start + timedelta(days=offset) for offset in range(DAYS)]
    tally: dict[tuple[str, date], tuple[int, int]] = {}
    for o in outcomes:
        if o.job == job:
            row = "backup" if o.kind == "backup" else "restore" if o.kind in RESTORE_KINDS \
                else None
            if row is not None:
                day = datetime.fromisoformat(o.finished_at).astimezone(ctx.tz).date()
                ok, bad = tally.get((row, day), (0, 0))
                tally[(row, day)] = (ok + 1, bad) if o.status == "success" else (ok, bad + 1)
    rows = []
    for row in ("backup", "restore"):
        # the cells are escaped once (ctx.cell); joining them as text keeps them so
        text = "".join(ctx.cell(day, day_state(*tally.get((row, day), (0, 0))))
                       for day in days)
        cells = Markup(text)  # noqa: S704
        rows.append((say(ctx.lang, f"strip.{row}"), cells))
    return rows


def day_state(ok: int, bad: int) -> str:
    """A day with only successes is ok, only failures failed, both mixed, none none."""
    if ok and bad:
        return "mixed"
    return "ok" if ok else "failed" if bad else "none"
