"""Database tables (SQLAlchemy Core); portable between SQLite and PostgreSQL.

Times are ISO 8601 strings in UTC with offset (`2026-11-25T02:00:00.000000+00:00`), which
sort correctly as text on every backend.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# One row per backup/copy/verify/probe/drill/clear attempt. `status` moves from running to
# success, failed, bad_data or interrupted (a killed run, found on the next start).
runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("repository", String(64), nullable=False, default="primary"),
    Column("status", String(16), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("exit_code", Integer),
    Column("snapshot_id", String(64)),
    Column("snapshot_time", String(40)),
    Column("error", Text),
    Column("details", Text, nullable=False, default="{}"),  # JSON
    Column("orchestrator", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("operator", String(255), nullable=False, default="scheduler"),
    # a measured full restore (verify --mode full, drill): metrics find it without JSON
    Column("restore_ms", BigInteger),
    # SHA-256 of the job file the run used: orchestrators with differing files show in status
    Column("job_file_sha256", String(64)),
    # why a run failed, as a category (errors.Reason), decided where the failure happened;
    # notifications show it instead of the error's text (NULL: success, or older rows)
    Column("reason", String(32)),
    Index("runs_job_kind", "job", "kind", "id"),
    # metrics: the newest run per job/kind/repository is one index seek (backupctl.state.view)
    Index("runs_job_kind_repository", "job", "kind", "repository", "id"),
    # the status page's 30-day strip: the runs that ended since a day, read from the index
    # alone (covering), not from a year of rows
    Index("runs_finished", "finished_at", "kind", "job", "status"),
)

# Source hashes taken right after a backup; the references of every restore test.
manifest = Table(
    "manifest", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("snapshot_id", String(64), nullable=False),
    Column("path", Text, nullable=False),  # as restic lists it (U+FFFD for bytes not UTF-8)
    Column("size", BigInteger, nullable=False),
    Column("mtime", String(40), nullable=False),
    Column("sha256", String(64)),
    Column("role", String(16), nullable=False),  # always | canary | sample
    Column("state", String(16), nullable=False),  # ok | changed | unreadable
    Column("note", Text),
    # the name's bytes on the source (base64) when they are not UTF-8: what is restored and
    # hashed (verify/names.py); NULL: `path` is the name
    Column("raw_path", Text),
    Index("manifest_job_snapshot", "job", "snapshot_id"),
)

# Proof freshness (SPEC §12, `verify.prove_within`): one row per file of the job's newest
# snapshot, kept in step with it by each backup (only new, changed and removed files are
# written): the file's content identity (size, mtime), the SHA-256 taken on the source for
# that identity (NULL until sampled), since when the identity is backed up, and when a restore
# test last restored it and matched the hash (NULL: unproven).
proofs = Table(
    "proofs", metadata,
    Column("job", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime", String(40), nullable=False),
    Column("sha256", String(64)),
    Column("seen_at", String(40), nullable=False),
    Column("proven_at", String(40)),
    Index("proofs_job_path", "job", "path", unique=True),
    # the selection (unproven first, oldest proof next) and the metrics (unproven count,
    # oldest proof, oldest unproven) are ranges of this index, not scans of the table
    Index("proofs_job_proven", "job", "proven_at", "seen_at"),
)

# Which snapshot `proofs` mirrors, per job, and how many files it holds.
proof_trees = Table(
    "proof_trees", metadata,
    Column("job", String(64), primary_key=True),
    Column("snapshot_id", String(64), nullable=False),
    Column("files", BigInteger, nullable=False),
    Column("changed", BigInteger, nullable=False),  # new or changed in that backup
    # files a name cannot key (restic lists two names that are not UTF-8 alike): unproven
    Column("untracked", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", String(40), nullable=False),
)

# The listing of each job's newest successful backup (actions/unchanged.py): its regular
# files (path, size, mtime) as gzip'd JSON, which an unchanged backup takes instead of
# `restic ls`. One row per job, replaced with the run that made it.
listings = Table(
    "listings", metadata,
    Column("job", String(64), primary_key=True),
    Column("snapshot_id", String(64), nullable=False),  # the whole id
    Column("snapshot_time", String(40), nullable=False),
    Column("sha256", String(64), nullable=False),  # of the uncompressed body
    Column("body", LargeBinary, nullable=False),
)

# Append-only, hash-chained audit evidence (SPEC §6). Never updated or deleted by the tool.
evidence = Table(
    "evidence", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("job", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("repository", String(64), nullable=False),
    Column("snapshot_id", String(64)),
    Column("snapshot_time", String(40)),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40), nullable=False),
    Column("operator", String(255), nullable=False),
    Column("result", String(8), nullable=False),
    Column("details", Text, nullable=False),  # canonical JSON
    Column("backupctl_version", String(32), nullable=False),
    Column("restic_version", String(32), nullable=False),
    # unique: two records claiming the same predecessor (a forked chain) are refused
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False),
    Column("run_id", Integer),
    # version 2 (SPEC §6): the chain version, the machine that wrote it, the Ed25519
    # signature of `hash` (NULL in version-1 records and before an evidence key existed)
    Column("chain_version", Integer),
    Column("orchestrator", String(255)),
    Column("signature", Text),
    # the signing key's fingerprint (hashed with the record; several orchestrators' keys)
    Column("key_fingerprint", String(80)),
)

# Ransomware tripwires and other per-job flags (raised until an operator clears them).
flags = Table(
    "flags", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("name", String(32), nullable=False),  # suspicious
    Column("raised_at", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("cleared_at", String(40)),
    Column("cleared_by", String(255)),
    Column("clear_reason", Text),
)

# Canary files placed by `backupctl canary init`, with their recorded content hash.
canaries = Table(
    "canaries", metadata,
    Column("job", String(64), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", String(40), nullable=False),
)

# Offline media labels written by `backupctl media init`, and when each was last seen.
media = Table(
    "media", metadata,
    Column("job", String(64), primary_key=True),
    Column("copy", String(64), primary_key=True),
    Column("label", String(64), primary_key=True),
    Column("fs_uuid", String(64)),
    Column("created_at", String(40), nullable=False),
    Column("last_attached", String(40)),
)

# Snapshot counts per job and repository as last observed (generation assertion).
generations = Table(
    "generations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("repository", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("expected", Integer, nullable=False),
    Column("observed_at", String(40), nullable=False),
    Column("finding", Text),
    Column("medium", String(64)),  # offline copies: the medium label observed
    Column("snapshots", Text),  # JSON list of snapshot times observed (loss detection)
    Index("generations_job_repo", "job", "repository", "id"),
)

# Every notification delivery attempt (SPEC §8): who was told what, when, and whether it
# arrived. `event` is failure|recovery|suspicious|stale|probe|test|digest|ping; `kind` and
# `repository` name the run the notice is about (NULL for test and digest); `run_id` lets a
# second caller (the systemd failure unit) see that a run was already notified. Never the
# message body.
notices = Table(
    "notices", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    Column("job", String(64)),
    Column("kind", String(16)),
    Column("repository", String(64)),
    Column("event", String(16), nullable=False),
    Column("result", String(8), nullable=False),  # ok | failed
    Column("error", Text),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("run_id", Integer),
    Column("orchestrator", String(255)),
    Column("sent_at", String(40), nullable=False),
    Index("notices_job_event", "job", "kind", "repository", "event", "id"),
    Index("notices_channel", "channel", "id"),
    Index("notices_run", "run_id"),
)

# Database dumps of a backup run (backupctl.databases): one row per database, the reference
# of its restore tests. `tables` is JSON {"schema.table": exact row count} counted in the
# dump's own snapshot; `files_snapshot_id` is the file snapshot of the same run.
database_manifest = Table(
    "database_manifest", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("run_id", Integer),
    Column("files_snapshot_id", String(64)),
    Column("database", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # postgresql | sqlite
    Column("snapshot_id", String(64), nullable=False),
    Column("path", Text, nullable=False),  # inside the snapshot: /JOB/NAME.pgdump
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("tables", Text, nullable=False),
    # the schema fingerprint (SPEC §10a): JSON [[kind, table, name, digest], …]; NULL: the
    # backup recorded none (an older backupctl), compared on rows only
    Column("schema_objects", Text),
    Column("server_version", Integer),  # server_version_num
    Column("dump_version", String(32)),
    Column("created_at", String(40), nullable=False),
    Index("database_manifest_job_db", "job", "database", "id"),
    Index("database_manifest_job_snapshot", "job", "snapshot_id"),
)

# Who holds each job's lease (several orchestrators on PostgreSQL, backupctl.state.leases).
# The lease itself is a session advisory lock; this row only says who holds it, for humans
# and `status`. A row outlives a killed holder until the next holder overwrites it: whether
# it is live is whether `backend_pid` still holds the advisory lock (pg_locks).
leases = Table(
    "leases", metadata,
    Column("job", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("orchestrator", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("backend_pid", Integer, nullable=False),
    Column("since", String(40), nullable=False),
)

meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    UniqueConstraint("key"),
)

