"""The stream helper, part two: the sqlite dump, the pgdump lister, and `main`.

Sent right after streamer.py as one program text (`python3 -I -c`, dump.helper_source), so
it runs in the same namespace and needs the same python3 >= 3.6 standard library only.
Imported (tests, type checking), it takes streamer.py's names from the module instead.
"""

import json
import os
import subprocess
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional

if __name__ != "__main__":  # imported; sent as one program, these are already defined
    from backupctl.databases.streamer import (
        CHUNK,
        DEVNULL,
        PIPE,
        TAIL,
        Deadline,
        Failure,
        Hasher,
        ResticBackup,
        Tail,
        close_all,
        dump_postgresql,
        restic_base,
        tool,
        write_all,
    )
    from backupctl.databases.streamer_schema import sqlite_schema


def sqlite_tables(conn: Any) -> List[List[Any]]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\' AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name")]
    # a quoted identifier from sqlite_master, never a value
    return [[name, conn.execute('SELECT count(*) FROM "%s"' % name.replace('"', '""'))  # noqa: S608
             .fetchone()[0]] for name in names]


def sqlite_chunks(conn: Any) -> Iterator[Any]:
    data = conn.serialize()
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        yield view[start:start + CHUNK]


def sql_chunks(conn: Any) -> Iterator[bytes]:
    parts = []  # type: List[bytes]
    size = 0
    for line in conn.iterdump():
        data = (line + "\n").encode("utf-8")
        parts.append(data)
        size += len(data)
        if size >= CHUNK:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def dump_sqlite(head: Dict[str, Any], deadline: Deadline) -> Dict[str, Any]:
    import sqlite3
    from urllib.parse import quote

    if sys.version_info < (3, 7):
        raise Failure("sqlite", "sqlite databases need python3 >= 3.7 on the host "
                      "(sqlite's online backup API)")
    path = head["dsn"]
    if not os.path.isfile(path):
        raise Failure("sqlite", "no database file at %s" % path)
    copy = sqlite3.connect(":memory:")
    try:
        source = sqlite3.connect("file:%s?mode=ro" % quote(path), uri=True, timeout=60)
        try:
            source.backup(copy)
        finally:
            source.close()
        tables = sqlite_tables(copy)
        schema = sqlite_schema(copy)
    except sqlite3.Error as exc:
        raise Failure("sqlite", "cannot read %s: %s" % (path, exc))
    serialize = hasattr(copy, "serialize")
    suffix = "sqlite" if serialize else "sql"
    chunks = sqlite_chunks(copy) if serialize else sql_chunks(copy)  # type: Iterator[Any]
    restic = ResticBackup(head, head["filename"] + "." + suffix)
    deadline.victims.append(restic.proc)
    hasher = Hasher()
    try:
        for chunk in chunks:
            hasher.update(chunk)
            restic.feed(chunk)
    except BaseException:
        restic.abort()
        raise
    if deadline.expired:
        raise Failure("sqlite", "the dump was stopped at the helper's deadline")
    summary = restic.commit()
    copy.close()
    return {"snapshot_id": summary["snapshot_id"], "sha256": hasher.digest.hexdigest(),
            "size": hasher.size, "restic_bytes": summary.get("total_bytes_processed"),
            "tables": tables, "schema": schema, "suffix": suffix,
            "sqlite_version": sqlite3.sqlite_version}


def list_pgdump(head: Dict[str, Any], deadline: Deadline) -> Dict[str, Any]:
    """restic dump → SHA-256 → pg_restore --list (which may stop reading before the end)."""
    return pipe_pgdump(head, deadline, ["--list"])


def restore_pgdump(head: Dict[str, Any], deadline: Deadline) -> Dict[str, Any]:
    """(on a replacement server: restore --databases) restic dump → SHA-256 → pg_restore
    into the new, empty database `dsn` names (no password in it: ~/.pgpass or peer)."""
    return pipe_pgdump(head, deadline, ["--no-owner", "--no-privileges", "--no-password",
                                        "--dbname=" + head["dsn"]], ["--no-lock"])


def pipe_pgdump(head: Dict[str, Any], deadline: Deadline, options: List[str],
                reading: Optional[List[str]] = None) -> Dict[str, Any]:
    """restic dump → SHA-256 → pg_restore OPTIONS reading the archive from its stdin
    (`reading`: restic's own options, e.g. --no-lock for a repository served read-only)."""
    argv, fds = restic_base(head)
    argv += ["--no-cache"] + (reading or []) + ["dump", head["snapshot"], head["path"]]
    try:
        restic = subprocess.Popen(argv, stdin=DEVNULL, stdout=PIPE, stderr=PIPE,
                                  pass_fds=fds)
    except OSError as exc:
        raise Failure("restic", "cannot start restic: %s" % exc, 127)
    finally:
        close_all(fds)
    deadline.victims.append(restic)
    assert restic.stdout is not None and restic.stderr is not None
    restic_err = Tail(restic.stderr)
    try:
        lister = subprocess.Popen([tool(head, "pg_restore")] + options, stdin=PIPE,
                                  stdout=PIPE, stderr=PIPE)
    except OSError as exc:
        restic.kill()
        restic.wait()
        raise Failure("pg_restore", "cannot start pg_restore: %s" % exc, 127)
    assert lister.stdin is not None and lister.stdout is not None and lister.stderr is not None
    toc, toc_err = Tail(lister.stdout, None), Tail(lister.stderr)
    hasher = Hasher()
    sink = lister.stdin.fileno()  # type: Optional[int]
    source = restic.stdout.fileno()
    while True:
        chunk = os.read(source, CHUNK)
        if not chunk:
            break
        hasher.update(chunk)
        if sink is not None:
            try:
                write_all(sink, chunk)
            except OSError:  # pg_restore read the table of contents and left
                sink = None
    try:
        lister.stdin.close()
    except OSError:
        pass
    code, list_code = restic.wait(), lister.wait()
    return {"sha256": hasher.digest.hexdigest(), "size": hasher.size, "restic_rc": code,
            "restic_stderr": restic_err.text(), "list_rc": list_code, "list": toc.text(),
            "list_stderr": toc_err.text(), "stopped": deadline.expired}


Mode = Callable[[Dict[str, Any], Deadline], Dict[str, Any]]
MODES = {"postgresql": dump_postgresql, "sqlite": dump_sqlite,
         "list": list_pgdump, "restore": restore_pgdump}  # type: Dict[str, Mode]


def main() -> None:
    head = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    sys.stdin.close()
    deadline = Deadline(head.get("deadline"))
    try:
        record = MODES[head["mode"]](head, deadline)
        record["ok"] = True
    except Failure as exc:
        record = {"ok": False, "stage": exc.stage, "error": exc.message,
                  "returncode": exc.returncode, "stderr": exc.stderr[-TAIL:]}
    except Exception as exc:  # reported as one line, never a traceback
        record = {"ok": False, "stage": "helper", "error": "%s: %s" % (type(exc).__name__, exc)}
    finally:
        deadline.cancel()
    record["deadline_expired"] = deadline.expired
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
    sys.exit(0 if record.get("ok") else 1)


if __name__ == "__main__":
    main()
