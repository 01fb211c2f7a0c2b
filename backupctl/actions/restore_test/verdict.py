"""The verdict of a restore test: what counts as proven, as bad data, as not proven.

One set of rules for `verify` (quick and full) and `drill`:
- anything wrong that was found (a file missing, unreadable, of another size or hash, a
  restore error, repository damage found by `restic check`, a failed application check, a
  restore slower than the RTO, a failed manual drill step; a database dump whose bytes
  changed, a table whose restored rows differ from the backup's count, a failed database
  check) is BAD DATA (exit 3), and the error names every one of them (database and table
  with the expected and restored rows);
- otherwise, when nothing could be compared (no usable reference: every manifest file
  changed since the snapshot) or a database could not be proven (no database manifest for
  the snapshot, no PostgreSQL on the orchestrator new enough, a server that could not
  start), the data is NOT PROVEN (exit 1), never a pass;
- only then is it proven (exit 0).
The RTO is compared with the whole measured restore: the files and every database.
A restic that could not run never reaches a verdict: it raises, and the run is a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backupctl.state.database_proof import DatabaseProof
from backupctl.state.records import CommandRun, Mismatch, over_rto
from backupctl.status import ExitStatus


@dataclass(frozen=True)
class Findings:
    """What a restore test found, step by step; steps add theirs with `+`."""

    files_checked: int = 0
    bytes_checked: int = 0
    mismatches: tuple[Mismatch, ...] = ()
    failures: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # changed on the source since the snapshot: not compared
    unverifiable: tuple[str, ...] = ()  # names restic cannot show: listed, not compared
    commands: tuple[CommandRun, ...] = ()
    restore_ms: int | None = None
    files_restored: int | None = None
    bytes_restored: int | None = None
    databases: tuple[DatabaseProof, ...] = ()  # one per database of the job

    @property
    def rto_ms(self) -> int | None:
        """The measured restore: the files' plus every database's (None: nothing timed)."""
        times = [t for t in (self.restore_ms, *(d.restore_ms for d in self.databases))
                 if t is not None]
        return sum(times) if times else None

    def __add__(self, other: Findings) -> Findings:
        return Findings(
            files_checked=self.files_checked + other.files_checked,
            bytes_checked=self.bytes_checked + other.bytes_checked,
            mismatches=self.mismatches + other.mismatches,
            failures=self.failures + other.failures,
            changed=self.changed + other.changed,
            unverifiable=self.unverifiable + other.unverifiable,
            commands=self.commands + other.commands,
            restore_ms=_first(other.restore_ms, self.restore_ms),
            files_restored=_first(other.files_restored, self.files_restored),
            bytes_restored=_first(other.bytes_restored, self.bytes_restored),
            databases=self.databases + other.databases)


def _first(a: int | None, b: int | None) -> int | None:
    return a if a is not None else b


@dataclass(frozen=True)
class Verdict:
    status: ExitStatus
    error: str | None
    problems: tuple[str, ...]


def rto_problem(restore_ms: int | None, rto_seconds: int | None) -> str | None:
    if not over_rto(restore_ms, rto_seconds):
        return None
    assert restore_ms is not None
    return f"restore took {restore_ms / 1000:.1f}s, more than the RTO of {rto_seconds}s"


def verdict(findings: Findings, *, job: str, what: str, rto_seconds: int | None,
            more_problems: Sequence[str] = ()) -> Verdict:
    """`what` names the test in the error, e.g. "snapshot 1a2b3c4d of primary"."""
    problems = [f"{m.path} ({m.reason})" for m in findings.mismatches]
    problems += findings.failures
    problems += [line for db in findings.databases for line in db.findings()]
    if (late := rto_problem(findings.rto_ms, rto_seconds)) is not None:
        problems.append(late)
    problems += more_problems
    unproven = [line for db in findings.databases for line in db.unproven()]
    if problems:
        also = f" (also not proven: {'; '.join(unproven)})" if unproven else ""
        return Verdict(ExitStatus.BAD_DATA, f"{job}: BAD DATA in {what}: " + "; ".join(problems)
                       + also, tuple(problems))
    if unproven:
        return Verdict(ExitStatus.FAILED, f"{job}: not proven in {what}: " + "; ".join(unproven),
                       ())
    if findings.files_checked == 0:
        return Verdict(ExitStatus.FAILED, (
            f"{job}: nothing could be compared in {what}: the source manifest has no usable "
            f"reference ({len(findings.changed)} file(s) changed since the snapshot, "
            f"{len(findings.unverifiable)} name(s) not verifiable); the data is not proven"),
            ())
    return Verdict(ExitStatus.OK, None, ())
