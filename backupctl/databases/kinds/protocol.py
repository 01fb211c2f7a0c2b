"""What every database kind's module provides (`Kind`), and what its proofs are given.

A kind's module holds, as module-level names, everything that differs between kinds: how
its dump is made on the host (the stream helper's mode, the file suffix, the --dry-run
lines), its quick and full proof (with its own row counts, the fingerprint the dump is
compared by), the runbook's commands that restore it by hand, and whether its full proof
runs a server as `restore_user`. mypy checks each module against `Kind` (kinds.KINDS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from backupctl.config.schema import Database
from backupctl.databases import account
from backupctl.databases.reading import Draft
from backupctl.execute import Runner, Secret
from backupctl.state.database_proof import SchemaObject


@dataclass(frozen=True)
class Proving:
    """Where a proof reads the dump from, for how long, and with which local tools."""

    repo_url: str
    password: Secret
    timeout: float | None
    pg_bin: Path | None = None  # PostgreSQL's bin directory (None: the newest installed)
    restore_user: str = account.DEFAULT_USER  # a full proof's server runs as this user


class Kind(Protocol):
    """One kind of database (the job file's `kind`)."""

    # The dump's file in its snapshot is /JOB.NAME.SUFFIX (a kind may answer another one
    # from its helper, e.g. sqlite's `.sql` text from an old python3; the manifest keeps it).
    SUFFIX: str
    HELPER_MODE: str  # the stream helper's mode that dumps it (streamer_modes.MODES)
    RESTORE_USER: bool  # its full proof runs a server as `restore_user` (SPEC §10a)
    ONTO_TARGET: bool  # `restore --databases` restores it into the target's server (§11)
    QUICK_PLAN: str  # what its quick proof does, for verify --dry-run
    FULL_PLAN: str  # what its full proof does, for verify --dry-run

    def dump_plan(self, database: Database, backup: str) -> list[str]:
        """What the helper runs on the host, after its own line (`backup`: restic's)."""
        ...

    def quick(self, runner: Runner, draft: Draft, *, proving: Proving) -> None:
        """Read the dump out of the repository and judge it without restoring it."""
        ...

    def full(self, runner: Runner, draft: Draft, *, proving: Proving, scratch_dir: Path,
             checks: Sequence[str]) -> None:
        """Restore the dump in `scratch_dir`, compare every table's rows and the schema
        fingerprint (`fingerprint`, compare.judge_schema), run `checks`."""
        ...

    def fingerprint(self, conn: Any) -> tuple[SchemaObject, ...]:
        """The schema fingerprint of a restored copy (`conn`: the kind's connection to it,
        psycopg or sqlite3), read with the statement the backup took it with (SPEC §10a)."""
        ...

    def restore_commands(self, database: str, dump: str) -> list[tuple[str, str]]:
        """The runbook's commands that restore `dump` (a local file) by hand, after restic
        wrote it: (command, key of its explanation in the runbook's strings.yaml)."""
        ...
