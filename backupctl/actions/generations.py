"""Generation assertion: does each repository hold the snapshots the policy says it keeps?

`keep` is restic's own `forget` algorithm (0.14, `restic.ApplyPolicy`): snapshots newest
first; each `--keep-X N` rule keeps a snapshot whose X-bucket (hour, day, ISO week, month,
year; `last`: every snapshot) differs from the previous one it kept, until N are kept.

`assess` compares what a repository holds with what `restic forget` would have kept from
everything we know it held: the snapshots seen at the previous observation (same repository
and, for offline copies, the same medium), the snapshots created or copied since, and what
is there now. A snapshot the policy keeps but the repository lacks was deleted outside
backupctl (ransomware, an operator with `restic forget`, a damaged disk): the repository
*lost* snapshots, which is an alert (`copy` exits 3; `status` lists the finding).
Raising the policy later never raises a false alarm: only snapshots once seen count. A lost
snapshot stays reported at every observation until the policy would have dropped it anyway.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backupctl.actions.context import Context
from backupctl.clock import iso
from backupctl.restic.parse import Snapshot, parse_time
from backupctl.state import queries
from backupctl.state.records import GenerationCheck

_BUCKETS: dict[str, Callable[[datetime, int], int]] = {
    "last": lambda _t, nr: nr,
    "hourly": lambda t, _nr: t.year * 1_000_000 + t.month * 10_000 + t.day * 100 + t.hour,
    "daily": lambda t, _nr: t.year * 10_000 + t.month * 100 + t.day,
    "weekly": lambda t, _nr: t.isocalendar()[0] * 100 + t.isocalendar()[1],
    "monthly": lambda t, _nr: t.year * 100 + t.month,
    "yearly": lambda t, _nr: t.year,
}
_ORDER = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


def keep(times: Iterable[datetime], policy: Mapping[str, int]) -> list[datetime]:
    """The snapshot times `restic forget` with `policy` keeps (newest first)."""
    unknown = set(policy) - set(_BUCKETS)
    if unknown:
        raise ValueError(f"unknown generation keys: {', '.join(sorted(unknown))}")
    newest_first = sorted(set(times), reverse=True)
    remaining = {k: policy.get(k, 0) for k in _ORDER}
    last: dict[str, int] = dict.fromkeys(_ORDER, -1)
    kept = []
    for nr, moment in enumerate(newest_first):
        keep_it = False
        for key in _ORDER:
            if remaining[key] > 0:
                bucket = _BUCKETS[key](moment, nr)
                if bucket != last[key]:
                    keep_it = True
                    last[key] = bucket
                    remaining[key] -= 1
        if keep_it:
            kept.append(moment)
    return kept


@dataclass(frozen=True)
class Assessment:
    """One repository's generations as observed, against what it should hold."""

    repository: str
    count: int
    expected: int
    observed: list[str]  # ISO snapshot times held now
    missing: list[str] = field(default_factory=list)  # kept by the policy, yet absent
    medium: str | None = None
    pruned: bool = True  # False: immutable, or pruning frozen

    @property
    def lost(self) -> bool:
        return bool(self.missing)

    @property
    def finding(self) -> str | None:
        if not self.missing:
            return None
        shown = ", ".join(self.missing[:5]) + (" …" if len(self.missing) > 5 else "")
        where = f"{self.repository}" + (f" (medium {self.medium})" if self.medium else "")
        return (f"{where} LOST {len(self.missing)} snapshot(s): holds {self.count}, the "
                f"generation policy keeps {self.expected} of the backups made; missing "
                f"snapshot(s) from {shown} (deleted outside backupctl?)")

    def record(self) -> GenerationCheck:
        return GenerationCheck(repository=self.repository, count=self.count,
                               expected=self.expected, missing=self.missing,
                               medium=self.medium, pruned=self.pruned, finding=self.finding)

    def row(self, job: str, observed_at: str) -> dict[str, Any]:
        return {"job": job, "repository": self.repository, "count": self.count,
                "expected": self.expected, "observed_at": observed_at,
                "finding": self.finding, "medium": self.medium,
                # what it should hold: a lost snapshot stays expected (and reported) until the
                # policy would have dropped it anyway
                "snapshots": json.dumps(sorted({*self.observed, *self.missing}))}


def assess(*, repository: str, policy: Mapping[str, int], observed: Sequence[datetime],
           known: Iterable[datetime], pruned: bool, medium: str | None = None) -> Assessment:
    """Compare `observed` with what the repository should hold given every snapshot `known`
    to have been in it. Pruned repositories should hold what the policy keeps; repositories
    that are never pruned (immutable copies, frozen pruning) should hold everything known.
    """
    candidates = set(known) | set(observed)
    should = set(keep(candidates, policy)) if pruned else candidates
    have = set(observed)
    missing = sorted(should - have)
    return Assessment(repository=repository, count=len(have), expected=len(should),
                      observed=[iso(t) for t in sorted(have)],
                      missing=[iso(t) for t in missing], medium=medium, pruned=pruned)


def previous(ctx: Context, job: str, repository: str, *,
             medium: str | None = None) -> tuple[str | None, list[datetime]]:
    """The last observation of a repository (and medium): its time and snapshot times."""
    row = ctx.store.query(queries.last_generations, job, repository, medium=medium)
    if row is None:
        return None, []
    return row.observed_at, [parse_time(t) for t in row.snapshots]


def assess_primary(ctx: Context, job: str, *, policy: Mapping[str, int],
                   snapshots: Sequence[Snapshot], pruned: bool = True) -> Assessment:
    """The primary: everything seen last time, plus every backup made since."""
    since, seen = previous(ctx, job, "primary")
    made = [parse_time(t) for t in ctx.store.query(queries.backup_times_since, job, since)]
    return assess(repository="primary", policy=policy, observed=[s.time for s in snapshots],
                  known=[*seen, *made], pruned=pruned)


def assess_copy(ctx: Context, job: str, copy: str, *, policy: Mapping[str, int],
                snapshots: Sequence[Snapshot], copied: Sequence[datetime], pruned: bool,
                medium: str | None = None) -> Assessment:
    """A copy: everything seen last time on this medium, plus what was just copied to it."""
    _, seen = previous(ctx, job, copy, medium=medium)
    return assess(repository=copy, policy=policy, observed=[s.time for s in snapshots],
                  known=[*seen, *copied], pruned=pruned, medium=medium)


def record(ctx: Context, job: str, assessments: Sequence[Assessment]) -> None:
    """Write observations outside a run (e.g. the primary, seen during `copy`)."""
    now = ctx.store.now()
    with ctx.store.transaction() as conn:
        queries.insert_generations(conn, [a.row(job, now) for a in assessments])


def latest(ctx: Context, job: str) -> list[dict[str, Any]]:
    """The newest observation of each repository (and medium) of a job, for `status`."""
    return [{"repository": r.repository, "medium": r.medium, "count": r.count,
             "expected": r.expected, "observed_at": r.observed_at, "finding": r.finding}
            for r in ctx.store.query(queries.newest_generations, job)]
