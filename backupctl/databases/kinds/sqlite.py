"""sqlite: copied with sqlite's online backup API on the host, proven in this process.

Needs on the source host: python3 >= 3.7 (the helper's `sqlite` mode: the online backup API
copies the database into memory, its rows are counted in that copy, and its image streams
into restic). Needs on the orchestrator: nothing but Python's sqlite3 (no server, no
`restore_user`).

A sqlite dump is the database image made by sqlite's online backup API (`.sqlite`) or, from
a host whose python3 is older than 3.11, the same copy as SQL text (`.sql`, iterdump). quick:
the stream's SHA-256 and its first bytes (an image header or SQL text). full: the image is
read into `scratch_dir/JOB.sqlite-XXXXXXXX` (0700; SQL text is loaded into a new database
file there), `PRAGMA integrity_check` must say ok, every table's rows are counted with the
backup's own statement and compared, so is the schema fingerprint (every index and trigger
with a CREATE statement in sqlite_master, by the digest of that statement: SPEC §10a; the
SQL text path rebuilds them, an image carries them byte for byte), and the job's `checks` run
(1 is true, 0 false). The directory is wiped whatever happens. sqlite runs in this process:
no server.

A dump is hostile input (SPEC §10a), and this process is backupctl's, with every secret: a
restored image is opened read-only (`mode=ro`), and every connection (also the one loading
SQL text) may attach no database (`ATTACH` and `VACUUM INTO` could write a file anywhere),
calls no `load_extension` (Python keeps extension loading off; the authorizer refuses it
too), and trusts no function in the schema (`trusted_schema = OFF`). The checks run on the
read-only connection and are rolled back.
"""

from __future__ import annotations

import contextlib
import shlex
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from backupctl.config.schema import Database
from backupctl.databases import compare, streamer_modes, streamer_schema
from backupctl.databases.kinds.protocol import Proving
from backupctl.databases.reading import Draft, enough_space, judge_read, read_dump
from backupctl.databases.reading import Read as ReadOutcome
from backupctl.execute import Runner
from backupctl.files import wipe
from backupctl.restic import commands as restic
from backupctl.restic.watch import RetryWatch
from backupctl.state.database_proof import DatabaseCheck, SchemaObject

SUFFIX = "sqlite"  # the database image; `.sql` (SQL text) from a host's python3 < 3.11
SQL_SUFFIX = "sql"
HELPER_MODE = "sqlite"
RESTORE_USER = False
ONTO_TARGET = False  # a file: restore --databases does not restore it
QUICK_PLAN = "its header read"
FULL_PLAN = "copied, PRAGMA integrity_check"
IMAGE_MAGIC = b"SQLite format 3\x00"
SQL_MAGIC = b"BEGIN TRANSACTION;"
PREFIX = ".sqlite-"
_HEAD = max(len(IMAGE_MAGIC), len(SQL_MAGIC))


def dump_plan(database: Database, backup: str) -> list[str]:
    return [f"  sqlite3 online backup of {database.dsn} into memory, count rows",
            f"  | {backup}"]


def restore_commands(database: str, dump: str) -> list[tuple[str, str]]:
    """An image is the database file; SQL text is loaded into one first. Then checked."""
    if not dump.endswith(f".{SQL_SUFFIX}"):
        return [(shlex.join(["sqlite3", dump, "PRAGMA integrity_check"]), "db_sqlite_check")]
    db = dump.removesuffix(f".{SQL_SUFFIX}") + f".{SUFFIX}"
    return [(f"sqlite3 {shlex.quote(db)} < {shlex.quote(dump)}", "db_sqlite_sql"),
            (shlex.join(["sqlite3", db, "PRAGMA integrity_check"]), "db_sqlite_check")]


def quick(runner: Runner, draft: Draft, *, proving: Proving) -> None:
    import hashlib

    manifest = draft.manifest
    digest = hashlib.sha256()
    head = bytearray()
    size = 0

    def sink(chunk: bytes) -> None:
        nonlocal size
        digest.update(chunk)
        size += len(chunk)
        if len(head) < _HEAD:
            head.extend(chunk[:_HEAD - len(head)])

    result = runner.run(restic.dump(proving.repo_url, proving.password,
                                    snapshot=draft.snapshot_id, path=manifest.path),
                        timeout=proving.timeout, stdout_sink=sink, stderr_watch=RetryWatch())
    if not judge_read(manifest, draft, ReadOutcome(digest.hexdigest(), size, result)):
        return
    magic = IMAGE_MAGIC if _image(manifest.path) else SQL_MAGIC
    if not bytes(head).startswith(magic):
        draft.not_proven = (f"{manifest.path} does not start like a sqlite "
                            f"{'database image' if magic is IMAGE_MAGIC else 'SQL dump'}")
        return
    draft.tables_checked = len(manifest.tables)


def _image(path: str) -> bool:
    """The dump is a database image (else SQL text)."""
    return path.endswith(f".{SUFFIX}")


def full(runner: Runner, draft: Draft, *, proving: Proving, scratch_dir: Path,
         checks: Sequence[str]) -> None:
    manifest = draft.manifest
    if not enough_space(scratch_dir, manifest, draft):
        return
    root = Path(tempfile.mkdtemp(prefix=f"{manifest.job}{PREFIX}", dir=scratch_dir))
    try:
        root.chmod(0o700)
        _restore_and_compare(runner, draft, root, proving=proving, checks=checks)
    finally:
        clock = time.monotonic()
        try:
            wipe(root)
        except OSError as exc:
            draft.problems.append(f"could not wipe {root}: {exc}; it is wiped on the next run")
        draft.timings_ms["wipe"] = round((time.monotonic() - clock) * 1000)


def _authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None,
               _source: str | None) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() == "load_extension":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _open(database: Path, *, read_only: bool) -> sqlite3.Connection:
    """A connection a hostile database cannot use to reach files elsewhere or load code."""
    uri = database.resolve().as_uri() + ("?mode=ro" if read_only else "?mode=rwc")
    conn = sqlite3.connect(uri, uri=True, timeout=10)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.set_authorizer(_authorize)
    conn.execute("PRAGMA trusted_schema = OFF")
    return conn


def _restore_and_compare(runner: Runner, draft: Draft, root: Path, *, proving: Proving,
                         checks: Sequence[str]) -> None:
    manifest = draft.manifest
    clock = time.monotonic()
    image = _image(manifest.path)
    dumped = root / ("restored.sqlite3" if image else "dump.sql")
    if not read_dump(runner, manifest, draft, repo_url=proving.repo_url,
                     password=proving.password, timeout=proving.timeout, target=dumped):
        return
    database = dumped if image else root / "restored.sqlite3"
    if not image:
        try:
            with contextlib.closing(_open(database, read_only=False)) as conn:
                conn.executescript(dumped.read_text(encoding="utf-8"))
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            draft.not_proven = f"the SQL dump did not load into sqlite {sqlite3.sqlite_version}: " \
                               f"{type(exc).__name__}"
            return
        dumped.unlink()
    draft.restore_ms = round((time.monotonic() - clock) * 1000)
    clock = time.monotonic()
    try:
        with contextlib.closing(_open(database, read_only=True)) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchall()
            intact = [tuple(r) for r in integrity] == [("ok",)]
            draft.checks.append(DatabaseCheck(
                "integrity_check", "PRAGMA integrity_check", intact,
                "" if intact else f"sqlite reports {len(integrity)} problem(s) in the copy"))
            restored = count_rows(conn)
            draft.timings_ms["count"] = round((time.monotonic() - clock) * 1000)
            draft.tables_checked = len(set(manifest.tables) & set(restored))
            draft.rows_restored = sum(restored.values())
            draft.mismatches = compare.compare_counts(manifest.tables, restored)
            draft.take_schema(compare.judge_schema(manifest.schema, fingerprint(conn)))
            draft.checks += [_check(conn, i, text) for i, text in enumerate(checks)]
    except sqlite3.Error as exc:
        draft.not_proven = f"the restored sqlite database could not be read: {exc}"


def count_rows(conn: sqlite3.Connection) -> dict[str, int]:
    """Every table's rows, with the very statement the backup counted them with."""
    return {str(n): int(c) for n, c in streamer_modes.sqlite_tables(conn)}


def fingerprint(conn: sqlite3.Connection) -> tuple[SchemaObject, ...]:
    """The copy's schema fingerprint, with the very statement the backup took it with."""
    return tuple(SchemaObject(*o) for o in streamer_schema.sqlite_schema(conn))


def _check(conn: sqlite3.Connection, index: int, text: str) -> DatabaseCheck:
    name = f"check {index + 1}"
    try:
        row = conn.execute(text).fetchone()
    except sqlite3.Error as exc:
        # sqlite's messages name the SQL's problem (no such table/column, syntax), not data
        return DatabaseCheck(name, text, False, f"error: {exc}")
    finally:
        conn.rollback()
    # sqlite has no boolean type: a comparison returns 1 or 0
    passed, detail = compare.check_verdict(tuple(row) if row is not None else None,
                                           integer_booleans=True)
    return DatabaseCheck(name, text, passed, detail)
