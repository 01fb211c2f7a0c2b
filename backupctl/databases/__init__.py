"""Database-aware backups and restore tests (SPEC §10, issue #16).

Backup side (on the source host, through the job's Runner): `dump_database` streams one
database into its own restic snapshot, counting every table's rows in the dump's snapshot
and hashing the stream on the way (dump.py, the helper program streamer.py).
Restore-test side (on the orchestrator): `prove_quick` and `prove_full` read the dump back
and prove it (prove.py; a throwaway PostgreSQL server: cluster.py; sqlite: sqlite.py);
`cleanup_leftovers` stops and wipes what a killed restore test left in scratch_dir.
`account.require` checks the unprivileged user the throwaway server runs as (SPEC §10a);
its UsageError (exit 2) is the only exit code decided here. Values: model.py.
"""

from backupctl.databases import account
from backupctl.databases.cluster import cleanup_leftovers, leftovers
from backupctl.databases.dump import dump_database
from backupctl.databases.model import (
    CheckOutcome,
    DatabaseFindings,
    DumpManifest,
    DumpResult,
    TableMismatch,
)
from backupctl.databases.prove import prove_full, prove_quick

__all__ = ["CheckOutcome", "DatabaseFindings", "DumpManifest", "DumpResult", "TableMismatch",
           "account", "cleanup_leftovers", "dump_database", "leftovers", "prove_full",
           "prove_quick"]
