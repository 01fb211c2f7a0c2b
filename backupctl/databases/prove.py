"""Restore-test side: prove a database dump from the repository (on the orchestrator).

quick: the dump is read out of the repository and its SHA-256 compared with the one
recorded at backup, then judged without restoring it (the kind's `quick`: PostgreSQL's
table of contents, sqlite's header). full: the dump is restored in `scratch_dir` (the
kind's `full`: a throwaway PostgreSQL run as `restore_user`, a read-only sqlite copy),
every table's rows are counted and compared with the backup's counts, the job's `checks`
run, and the time of reading + restoring is measured (it counts toward the RTO).

The functions return a `DatabaseProof` and never decide an exit code: the engine maps
`bad_data` (changed bytes, a table's rows differ, a failed check) to exit 3 and anything
not proven to exit 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from backupctl.databases import account
from backupctl.databases.kinds import KINDS, Kind, Proving
from backupctl.databases.model import DumpManifest
from backupctl.databases.reading import Draft
from backupctl.execute import Runner, Secret
from backupctl.state.database_proof import DatabaseProof


def prove_quick(runner: Runner, manifest: DumpManifest, *, repo_url: str, password: Secret,
                timeout: float | None, snapshot: str | None = None,
                pg_bin: Path | None = None) -> DatabaseProof:
    """Read the dump out of the repository, compare its SHA-256, judge it unrestored.

    `snapshot`: the dump's snapshot in this repository when it is a copy (restic copy gives
    it a new id; its `original` is `manifest.snapshot_id`).
    """
    proving = Proving(repo_url=repo_url, password=password, timeout=timeout, pg_bin=pg_bin)
    return _proved(manifest, "quick", snapshot, lambda kind, draft: kind.quick(
        runner, draft, proving=proving))


def prove_full(runner: Runner, manifest: DumpManifest, *, checks: Sequence[str],
               repo_url: str, password: Secret, scratch_dir: Path, timeout: float | None,
               snapshot: str | None = None, pg_bin: Path | None = None,
               restore_user: str = account.DEFAULT_USER) -> DatabaseProof:
    """Restore the dump in `scratch_dir`, compare every table's rows, run `checks`.

    `restore_user`: the system user a throwaway server runs as (a problem with it: not
    proven)."""
    proving = Proving(repo_url=repo_url, password=password, timeout=timeout, pg_bin=pg_bin,
                      restore_user=restore_user)
    return _proved(manifest, "full", snapshot, lambda kind, draft: kind.full(
        runner, draft, proving=proving, scratch_dir=scratch_dir, checks=checks))


def _proved(manifest: DumpManifest, mode: Literal["quick", "full"], snapshot: str | None,
            prove: Callable[[Kind, Draft], None]) -> DatabaseProof:
    draft = Draft(manifest, mode, snapshot or manifest.snapshot_id)
    clock = time.monotonic()
    if (kind := KINDS.get(manifest.kind)) is None:  # recorded by another version
        draft.not_proven = f"this backupctl knows no database kind {manifest.kind!r}"
    else:
        prove(kind, draft)
    draft.timings_ms["total"] = round((time.monotonic() - clock) * 1000)
    return draft.done()
