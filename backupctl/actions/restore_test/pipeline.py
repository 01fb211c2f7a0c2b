"""What a restore-test pipeline returns, and the steps quick and full share."""

from __future__ import annotations

from dataclasses import dataclass, field

from backupctl.actions.restore_test.checks import CheckOutcome
from backupctl.actions.restore_test.snapshot import References
from backupctl.actions.restore_test.verdict import Findings
from backupctl.errors import ResticError
from backupctl.execute import Runner
from backupctl.restic import commands
from backupctl.restic import run as restic
from backupctl.restic.run import Repo
from backupctl.verify.listing import Listing, SnapshotRef


@dataclass(frozen=True)
class Tested:
    """One restore test's outcome, before the verdict."""

    snapshot: SnapshotRef
    references: References
    findings: Findings
    check: CheckOutcome | None
    steps: tuple[str, ...] = ()
    timings_ms: dict[str, int] = field(default_factory=dict)
    restic_invocations: int = 0
    files_total: int | None = None  # files in the snapshot (coverage's denominator)

    @property
    def all_findings(self) -> Findings:
        """The findings with `restic check`'s (its damage is bad data too)."""
        if self.check is None:
            return self.findings
        return self.findings + Findings(mismatches=self.check.mismatches,
                                        failures=self.check.failures)

    @property
    def coverage(self) -> float | None:
        total = self.files_total
        return min(self.findings.files_checked, total) / total if total else None


def list_snapshot(runner: Runner, repo: Repo, snapshot: str, *, job: str,
                  timeout: float, latest_of_host: bool = False) -> Listing:
    """`restic ls --json` of one snapshot, streamed into a compact listing; with
    `latest_of_host`, `snapshot` is `latest` among all the job's snapshots (files and
    database dumps) as restic resolves it: the listing names the one it chose."""
    out = Listing()
    argv = commands.ls(repo.url, repo.password, snapshot,
                       host=job if latest_of_host else None)
    restic.run(runner, argv, job=job,
               what=f"listing snapshot {snapshot[:8]} of {repo.name}", timeout=timeout,
               stdout_sink=out.feed, unlock=repo)
    out.close()
    if not out.snapshot_id:
        raise ResticError(f"{job}: restic ls printed no snapshot for {snapshot[:8]}")
    return out
