"""Database-aware backups and restore tests (SPEC §10, issue #16).

Backup side (on the source host, through the job's Runner): `dump_database` streams one
database into its own restic snapshot, counting every table's rows in the dump's snapshot
and hashing the stream on the way (dump.py, the helper program streamer.py, started by
helper.py). Restore-test side (on the orchestrator): `prove_quick` and `prove_full` read the
dump back and prove it (prove.py). What differs between kinds (the dump, the proofs, the
runbook's commands) is in one module per kind, chosen from `kinds.KINDS` (PostgreSQL:
kinds/postgresql.py with the throwaway server of cluster.py; sqlite: kinds/sqlite.py).
`cleanup_leftovers` stops and wipes what a killed restore test left in scratch_dir.
`account.require` checks the unprivileged user the throwaway server runs as (SPEC §10a);
its UsageError (exit 2) is the only exit code decided here. Values: model.py; what a proof
found: state.database_proof.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backupctl.databases import account
    from backupctl.databases.cluster import cleanup_leftovers, leftovers
    from backupctl.databases.dump import dump_database
    from backupctl.databases.kinds import KINDS, Kind
    from backupctl.databases.model import DumpManifest, DumpResult
    from backupctl.databases.prove import prove_full, prove_quick

__all__ = ["KINDS", "DumpManifest", "DumpResult", "Kind", "account", "cleanup_leftovers",
           "dump_database", "leftovers", "prove_full", "prove_quick"]

# Each name's module, imported when first used (PEP 562): every run wipes a killed restore
# test's leftovers (cluster), only a job with databases needs the dump and the kinds' modules
# (~15 ms of start-up on 2 cores, docs/benchmarks.md issue #25).
_WHERE = {"account": "", "cleanup_leftovers": "cluster", "leftovers": "cluster",
          "dump_database": "dump", "KINDS": "kinds", "Kind": "kinds",
          "DumpManifest": "model", "DumpResult": "model", "prove_full": "prove",
          "prove_quick": "prove"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _WHERE[name]:
        return importlib.import_module(f"{__name__}.{name}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
