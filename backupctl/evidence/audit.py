"""`evidence verify --db`: the chain, its signatures, every run's record, and the anchors.

What it catches (docs/audit.md has the threat model):
- a record edited, inserted, reordered or deleted in the middle (hash links);
- a record rewritten with its hash recomputed: its signature no longer verifies (Ed25519,
  key outside the database), or it lost its signature after signed ones;
- a run recorded without its evidence record, or whose record was deleted together with
  later ones: every finished run must have one;
- the newest records deleted (the chain cut short): the database's head is before an
  anchor written outside it (anchor file, system log, immutable copies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backupctl.errors import UsageError
from backupctl.evidence import anchor, chain
from backupctl.signing import PublicKey
from backupctl.state import queries
from backupctl.state.db import Store


@dataclass(frozen=True)
class Audit:
    check: chain.ChainCheck
    problems: list[chain.Problem] = field(default_factory=list)
    key_fingerprint: str | None = None
    anchors: int = 0  # anchored heads compared
    sources: list[str] = field(default_factory=list)  # where the anchors came from

    @property
    def problem(self) -> chain.Problem | None:
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        return {**self.check.to_dict(), "ok": not self.problems,
                "problem": self.problem.to_dict() if self.problem else None,
                "problems": [p.to_dict() for p in self.problems],
                "key_fingerprint": self.key_fingerprint, "anchors": self.anchors,
                "anchor_sources": self.sources}


def read_anchor_file(path: Path) -> list[chain.Anchor]:
    try:
        return chain.parse_anchors(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"anchor file {path}: {exc}") from None


def audit(store: Store, *, key: PublicKey | None, anchor_files: Sequence[Path] = (),
          copies: Sequence[tuple[str, list[anchor.Stored]]] = ()) -> Audit:
    """Everything `evidence verify --db` checks, every problem found (first one first)."""
    with store.read() as conn:
        entries = list(chain.entries(conn))
        unrecorded = queries.finished_runs_without_evidence(conn)
    checked = chain.check(entries, public_key=key)
    problems = [checked.problem] if checked.problem else []
    problems += [chain.Problem(None, None, "missing", (
        f"{row.kind} run {row.id} of {row.job} ({row.status}, finished {row.finished_at}) has "
        "no evidence record: it was deleted")) for row in unrecorded]
    anchors, sources = 0, []
    for path in anchor_files:
        found = read_anchor_file(path)
        anchors += len(found)
        sources.append(str(path))
        if (problem := chain.check_anchors(entries, found)) is not None:
            problems.append(problem)
    for name, stored in copies:
        anchors += len(stored)
        sources.append(f"immutable copy {name}")
        if (problem := anchor.compare(entries, stored, copy=name)) is not None:
            problems.append(problem)
    return Audit(checked, problems, key.fingerprint if key else None, anchors, sources)
