"""Restore tests of sqlite dumps (called through prove.prove_quick / prove_full).

A sqlite dump is the database image made by sqlite's online backup API (`.sqlite`) or, from
a host whose python3 is older than 3.11, the same copy as SQL text (`.sql`, iterdump). quick:
the stream's SHA-256 and its first bytes (an image header or SQL text). full: the image is
read into `scratch_dir/JOB.sqlite-XXXXXXXX` (0700; SQL text is loaded into a new database
file there), `PRAGMA integrity_check` must say ok, every table's rows are counted with the
backup's own statement and compared, and the job's `checks` run (1 is true, 0 false). The
directory is wiped whatever happens. sqlite runs in this process: no server.

A dump is hostile input (SPEC §10a), and this process is backupctl's, with every secret: a
restored image is opened read-only (`mode=ro`), and every connection (also the one loading
SQL text) may attach no database (`ATTACH` and `VACUUM INTO` could write a file anywhere),
calls no `load_extension` (Python keeps extension loading off; the authorizer refuses it
too), and trusts no function in the schema (`trusted_schema = OFF`). The checks run on the
read-only connection and are rolled back.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from backupctl.databases import compare, streamer_modes
from backupctl.databases.model import CheckOutcome, DumpManifest
from backupctl.databases.reading import Draft, enough_space, judge_read, read_dump
from backupctl.databases.reading import Read as ReadOutcome
from backupctl.execute import Runner, Secret
from backupctl.files import wipe
from backupctl.restic import commands as restic

IMAGE_MAGIC = b"SQLite format 3\x00"
SQL_MAGIC = b"BEGIN TRANSACTION;"
PREFIX = ".sqlite-"
_HEAD = max(len(IMAGE_MAGIC), len(SQL_MAGIC))


def quick(runner: Runner, manifest: DumpManifest, draft: Draft, *, repo_url: str,
          password: Secret, timeout: float | None) -> None:
    import hashlib

    digest = hashlib.sha256()
    head = bytearray()
    size = 0

    def sink(chunk: bytes) -> None:
        nonlocal size
        digest.update(chunk)
        size += len(chunk)
        if len(head) < _HEAD:
            head.extend(chunk[:_HEAD - len(head)])

    result = runner.run(restic.dump(repo_url, password, snapshot=draft.snapshot_id,
                                    path=manifest.path), timeout=timeout, stdout_sink=sink)
    if not judge_read(manifest, draft, ReadOutcome(digest.hexdigest(), size, result)):
        return
    magic = IMAGE_MAGIC if manifest.path.endswith(".sqlite") else SQL_MAGIC
    if not bytes(head).startswith(magic):
        draft.not_proven = (f"{manifest.path} does not start like a sqlite "
                            f"{'database image' if magic is IMAGE_MAGIC else 'SQL dump'}")
        return
    draft.tables_checked = len(manifest.tables)


def full(runner: Runner, manifest: DumpManifest, draft: Draft, *, checks: Sequence[str],
         repo_url: str, password: Secret, scratch_dir: Path, timeout: float | None) -> None:
    if not enough_space(scratch_dir, manifest, draft):
        return
    root = Path(tempfile.mkdtemp(prefix=f"{manifest.job}{PREFIX}", dir=scratch_dir))
    try:
        root.chmod(0o700)
        _restore_and_compare(runner, manifest, draft, root, checks=checks, repo_url=repo_url,
                             password=password, timeout=timeout)
    finally:
        clock = time.monotonic()
        try:
            wipe(root)
        except OSError as exc:
            draft.problems.append(f"could not wipe {root}: {exc}; it is wiped on the next run")
        draft.timings["wipe"] = round((time.monotonic() - clock) * 1000)


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


def _restore_and_compare(runner: Runner, manifest: DumpManifest, draft: Draft, root: Path, *,
                         checks: Sequence[str], repo_url: str, password: Secret,
                         timeout: float | None) -> None:
    clock = time.monotonic()
    image = manifest.path.endswith(".sqlite")
    dumped = root / ("restored.sqlite3" if image else "dump.sql")
    if not read_dump(runner, manifest, draft, repo_url=repo_url, password=password,
                     timeout=timeout, target=dumped):
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
            draft.checks.append(CheckOutcome(
                "integrity_check", "PRAGMA integrity_check", intact,
                "" if intact else f"sqlite reports {len(integrity)} problem(s) in the copy"))
            restored = {str(n): int(c) for n, c in streamer_modes.sqlite_tables(conn)}
            draft.timings["count"] = round((time.monotonic() - clock) * 1000)
            draft.tables_checked = len(set(manifest.tables) & set(restored))
            draft.rows_restored = sum(restored.values())
            draft.mismatches = compare.compare_counts(manifest.tables, restored)
            draft.checks += [_check(conn, i, text) for i, text in enumerate(checks)]
    except sqlite3.Error as exc:
        draft.not_proven = f"the restored sqlite database could not be read: {exc}"


def _check(conn: sqlite3.Connection, index: int, text: str) -> CheckOutcome:
    name = f"check {index + 1}"
    try:
        row = conn.execute(text).fetchone()
    except sqlite3.Error as exc:
        # sqlite's messages name the SQL's problem (no such table/column, syntax), not data
        return CheckOutcome(name, text, False, f"error: {exc}")
    finally:
        conn.rollback()
    passed, detail = compare.check_verdict(tuple(row) if row is not None else None,
                                           kind="sqlite")
    return CheckOutcome(name, text, passed, detail)
