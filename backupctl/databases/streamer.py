"""The stream helper: one process per database that moves a dump between a database and restic.

This file is sent as the program text of `python3 -I -c` (never imported for running on the
host), so it needs only the standard library of python3 >= 3.6 (sqlite: >= 3.7): no
`from __future__`, no walrus, typing generics from `typing`. Its input is one JSON object on
stdin (it carries the repository password: never argv, environment or disk); its output is
one JSON line on stdout. Modes:

- `dump`, kind `postgresql` (on the source host): psql opens `BEGIN ISOLATION LEVEL
  REPEATABLE READ READ ONLY` and exports its snapshot; every user table's rows are counted
  and the schema fingerprinted (streamer_schema.py) in that snapshot; `pg_dump --snapshot=ID
  --format=custom` streams, hashed on the way, into `restic backup --stdin`. restic reads the
  password and the repository from pipes (`--password-file /dev/fd/N`, `--repository-file
  /dev/fd/M`): its stdin carries the data, and a repository URL can hold a password.
- streamer_modes.py: `sqlite` (on the source host), `list` (a pgdump into `pg_restore --list`).

A dump that fails (pg_dump exits non-zero, is killed, or the helper dies) must never become
a snapshot: restic makes its snapshot when its stdin reaches EOF, so it is killed *before* its
stdin is closed. A guard process holds a second copy of restic's stdin and kills restic when
the helper dies without saying that the dump is complete (the kernel closes a dead helper's
descriptors before it could kill restic itself).
"""

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

if __name__ != "__main__":  # imported; sent as one program, streamer_schema.py came first
    from backupctl.databases.streamer_schema import SCHEMA_SQL, SEARCH_PATH
    from backupctl.databases.streamer_watch import TAIL as TAIL  # for streamer_modes
    from backupctl.databases.streamer_watch import RetryLines
    from backupctl.databases.streamer_watch import Tail as Tail

CHUNK = 1 << 20
PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL

# Runs as its own process: exits quietly when told "c" (commit); kills restic otherwise.
GUARD = """
import os, signal, sys
life, pid = int(sys.argv[1]), int(sys.argv[2])
try:
    done = os.read(life, 1) == b"c"
except OSError:
    done = False
if not done:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""

# Every user table, counted exactly in the transaction's snapshot (one statement: the
# counts run inside query_to_xml, in the same snapshot). Tables of extensions are left out:
# pg_dump does not dump their rows.
COUNT_SQL = r"""
SELECT coalesce(json_agg(json_build_array(t.qualified, t.n)), '[]')
FROM (
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
         (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I',
                 n.nspname, c.relname), false, true, '')))[1]::text::bigint AS n
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND c.relpersistence <> 't'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
  ORDER BY 1
) t;
"""


class Failure(Exception):
    def __init__(self, stage: str, message: str, returncode: Optional[int] = None,
                 stderr: str = "") -> None:
        Exception.__init__(self, message)
        self.stage = stage
        self.message = message
        self.returncode = returncode
        self.stderr = stderr


def secret_fd(value: str) -> int:
    """A pipe holding one line (a password, a repository URL); the read end is passed to
    restic as /dev/fd/N. Far below the pipe buffer, so the write never blocks."""
    read_end, write_end = os.pipe()
    os.write(write_end, value.encode("utf-8") + b"\n")
    os.close(write_end)
    return read_end


def restic_base(head: Dict[str, Any]) -> Tuple[List[str], List[int]]:
    """restic's argv start and the descriptors it must inherit (close them once restic has
    started). The repository goes through a pipe like the password: a `rest:` URL can hold
    one (`rest:http://user:pw@host/`), and every argv shows in the host's `ps`."""
    repo = secret_fd(head["repo"])
    try:
        password = secret_fd(head["password"])
    except BaseException:
        os.close(repo)
        raise
    # restic_options: --stuck-request-timeout where this restic takes it (restic.reach)
    return ([head.get("restic") or "restic"] + [str(o) for o in head.get("restic_options") or []]
            + ["--repository-file", "/dev/fd/%d" % repo, "--password-file",
               "/dev/fd/%d" % password], [repo, password])


def close_all(fds: List[int]) -> None:
    for fd in fds:
        os.close(fd)


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def write_all(fd: int, data: Any) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class ResticBackup(object):
    """`restic backup --stdin` with a guard; `feed()` the data, then `commit()` or `abort()`."""

    def __init__(self, head: Dict[str, Any], filename: str) -> None:
        argv, fds = restic_base(head)
        argv += ["backup", "--stdin", "--stdin-filename", filename, "--host", head["host"],
                 "--json"]
        for tag in head["tags"]:
            argv += ["--tag", tag]
        try:
            self.proc = subprocess.Popen(argv, stdin=PIPE, stdout=PIPE, stderr=PIPE,
                                         pass_fds=fds)
        except OSError as exc:
            raise Failure("restic", "cannot start restic on this host: %s" % exc, 127)
        finally:
            close_all(fds)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.out = Tail(self.proc.stdout, 1 << 20)
        self.retries = RetryLines()
        self.err = Tail(self.proc.stderr, watch=self.retries, stop=self.proc.kill)
        self.stdin_fd = self.proc.stdin.fileno()
        life_read, self.life = os.pipe()
        try:
            self.guard = subprocess.Popen(
                [sys.executable, "-I", "-c", GUARD, str(life_read), str(self.proc.pid)],
                stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL,
                pass_fds=(life_read, self.stdin_fd))  # type: Optional[subprocess.Popen[bytes]]
        except OSError:
            self.proc.kill()
            raise
        finally:
            os.close(life_read)

    def feed(self, data: Any) -> None:
        try:
            write_all(self.stdin_fd, data)
        except OSError:
            try:
                code = self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
            self.unreachable(code)
            raise Failure("restic", "restic backup stopped reading the dump (exit %d)" % code,
                          code, self.err.text())

    def unreachable(self, code: int) -> None:
        """Failure `unreachable` when the retry watch stopped restic."""
        if self.retries.stopped:
            raise Failure("unreachable", "restic backup could not reach the repository and "
                          "was stopped (repository unreachable): " + self.retries.stopped,
                          code, self.err.text())

    def abort(self) -> None:
        """Kill restic first, then close its stdin: no snapshot of a partial stream."""
        self.proc.kill()
        self._close(commit=False)
        self.proc.wait()

    def commit(self) -> Dict[str, Any]:
        """End of the stream: restic saves the snapshot; its summary."""
        self._close(commit=True)
        code = self.proc.wait()
        output = self.out.text()
        self.unreachable(code)
        if code != 0:
            raise Failure("restic", "restic backup exited %d" % code, code, self.err.text())
        summary = None
        for line in output.splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("message_type") == "summary":
                summary = message
        if summary is None or not summary.get("snapshot_id"):
            raise Failure("restic", "restic backup printed no snapshot", code, self.err.text())
        return summary

    def _close(self, commit: bool) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            if commit:
                os.write(self.life, b"c")
        finally:
            os.close(self.life)
        if self.guard is not None:
            self.guard.wait()
            self.guard = None


class Hasher(object):
    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def update(self, data: Any) -> None:
        self.digest.update(data)
        self.size += len(data)


class Psql(object):
    """psql as a coprocess: one session, queries answered up to a random marker line."""

    def __init__(self, head: Dict[str, Any]) -> None:
        argv = [tool(head, "psql"), "-X", "-q", "-A", "-t", "--no-password",
                "-v", "ON_ERROR_STOP=1", "--dbname=" + head["dsn"]]
        try:
            self.proc = subprocess.Popen(argv, stdin=PIPE, stdout=PIPE, stderr=PIPE)
        except OSError as exc:
            raise Failure("psql", "cannot start psql on this host: %s" % exc, 127)
        assert self.proc.stderr is not None
        self.err = Tail(self.proc.stderr)
        self.marker = "__backupctl_%s__" % os.urandom(8).hex()

    def query(self, sql: str) -> str:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write((sql + "\n\\echo " + self.marker + "\n").encode("utf-8"))
            stdin.flush()
        except OSError:
            pass  # psql is gone; its stderr says why
        lines = []  # type: List[bytes]
        while True:
            line = stdout.readline()
            if not line:
                code = self.proc.wait()
                raise Failure("psql", "psql failed (exit %d)" % code, code, self.err.text())
            if line.rstrip(b"\r\n") == self.marker.encode():
                return b"".join(lines).decode("utf-8").strip()
            lines.append(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.write(b"COMMIT;\n\\q\n")
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def tool(head: Dict[str, Any], name: str) -> str:
    bindir = head.get("pg_bin")
    return os.path.join(bindir, name) if bindir else name


def output_of(argv: List[str]) -> Tuple[int, str, str]:
    """A short command's exit status, stdout and stderr; 127 when it does not start."""
    try:
        proc = subprocess.Popen(argv, stdin=DEVNULL, stdout=PIPE, stderr=PIPE)
    except OSError as exc:
        return 127, "", str(exc)
    out, err = proc.communicate()
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def installed_pg_bins() -> List[Tuple[Tuple[int, ...], str]]:
    """(version, bin directory) of every PostgreSQL client here, newest first: Debian's
    /usr/lib/postgresql/N/bin, PGDG's /usr/pgsql-N/bin, `pg_config --bindir`."""
    code, config, _ = output_of(["pg_config", "--bindir"])
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin") + glob.glob("/usr/pgsql-*/bin")) + (
        [config.strip()] if code == 0 and config.strip() else [])
    found = {}  # type: Dict[str, Tuple[Tuple[int, ...], str]]
    for bindir in dirs:
        code, out, _ = output_of([os.path.join(bindir, "pg_dump"), "--version"])
        match = re.search(r"(\d+)(?:\.(\d+))?", out)
        if code == 0 and match and os.access(os.path.join(bindir, "psql"), os.X_OK):
            found.setdefault(os.path.realpath(bindir),
                             (tuple(int(n or 0) for n in match.groups()), bindir))
    return sorted(found.values(), reverse=True)


def pg_dump_bin(found: List[Tuple[Tuple[int, ...], str]], server: int) -> Optional[str]:
    """pg_dump of the server's major version (its dump restores on a PostgreSQL of that
    version), else the oldest newer one (none dumps a newer server), else None: PATH's."""
    major = server // 10000
    same = [d for v, d in found if v[0] == major]
    newer = [d for v, d in reversed(found) if v[0] > major]
    return (same + newer + [None])[0]


def with_pg_dump(head: Dict[str, Any], found: List[Tuple[Tuple[int, ...], str]],
                 on_path: bool, server: int) -> Tuple[Dict[str, Any], str]:
    """`head` with the pg_dump for the server and its version: PATH's while it can dump it."""
    version = pg_dump_version(head)
    if found and (not on_path or int(version.split(".")[0] or 0) < server // 10000):
        head = dict(head, pg_bin=pg_dump_bin(found, server))
        version = pg_dump_version(head)
    return head, version


def pg_dump_version(head: Dict[str, Any]) -> str:
    code, out, err = output_of([tool(head, "pg_dump"), "--version"])
    if code != 0:
        raise Failure("pg_dump", "cannot start pg_dump on this host: %s" % err.strip()
                      if code == 127 else "pg_dump --version exited %d" % code, code, err)
    match = re.search(r"(\d+(?:\.\d+)*)", out)
    return match.group(1) if match else ""


class Deadline(object):
    """Stops the dump on the helper's own deadline (a remote helper outlives a closed SSH
    channel; it must not go on to make a snapshot nobody records)."""

    def __init__(self, seconds: Optional[float]) -> None:
        self.expired = False
        self.victims = []  # type: List[subprocess.Popen[bytes]]
        self.timer = None  # type: Optional[threading.Timer]
        if seconds:
            self.timer = threading.Timer(seconds, self._expire)
            self.timer.daemon = True
            self.timer.start()

    def _expire(self) -> None:
        self.expired = True
        for proc in self.victims:
            try:
                proc.kill()
            except OSError:
                pass

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


def dump_postgresql(head: Dict[str, Any], deadline: Deadline) -> Dict[str, Any]:
    # No pg_bin: PATH's programs, else the installed ones (never one version named in code)
    found = [] if head.get("pg_bin") else installed_pg_bins()
    on_path = bool(shutil.which("psql") and shutil.which("pg_dump"))
    if found and not on_path:
        head = dict(head, pg_bin=found[0][1])
    psql = Psql(head)
    deadline.victims.append(psql.proc)
    try:
        # row_security off: like pg_dump, fail rather than count rows a policy hides.
        psql.query("SET statement_timeout = 0; SET lock_timeout = 0; "
                   "SET idle_in_transaction_session_timeout = 0; SET row_security = off;")
        first = psql.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
                           "SELECT pg_export_snapshot() || ' ' || "
                           "current_setting('server_version_num');")
        snapshot, server = first.split()
        head, version = with_pg_dump(head, found, on_path, int(server))
        tables = [(str(name), int(count)) for name, count in json.loads(psql.query(COUNT_SQL))]
        schema = json.loads(psql.query(SEARCH_PATH + ";\n" + SCHEMA_SQL))
        restic = ResticBackup(head, head["filename"] + ".pgdump")
        argv = [tool(head, "pg_dump"), "--format=custom", "--no-password",
                "--snapshot=" + snapshot, "--dbname=" + head["dsn"]] + list(head["options"])
        try:
            dump = subprocess.Popen(argv, stdin=DEVNULL, stdout=PIPE, stderr=PIPE)
        except OSError as exc:
            restic.abort()
            raise Failure("pg_dump", "cannot start pg_dump on this host: %s" % exc, 127)
        deadline.victims.append(dump)
        assert dump.stdout is not None and dump.stderr is not None
        dump_err = Tail(dump.stderr)
        hasher = Hasher()
        try:
            fd = dump.stdout.fileno()
            while True:
                chunk = os.read(fd, CHUNK)
                if not chunk:
                    break
                hasher.update(chunk)
                restic.feed(chunk)
        except BaseException:
            dump.kill()
            dump.wait()
            restic.abort()
            raise
        code = dump.wait()
        if code != 0 or deadline.expired:
            restic.abort()
            what = ("was stopped at the helper's deadline" if deadline.expired else
                    "was killed by signal %d" % -code if code < 0 else "exited %d" % code)
            raise Failure("pg_dump", "pg_dump %s; no snapshot was made" % what, code,
                          dump_err.text())
        summary = restic.commit()
    finally:
        psql.close()
    return {"snapshot_id": summary["snapshot_id"], "sha256": hasher.digest.hexdigest(),
            "size": hasher.size, "restic_bytes": summary.get("total_bytes_processed"),
            "tables": tables, "schema": schema, "server_version": int(server),
            "dump_version": version, "suffix": "pgdump", "warnings": first_line(dump_err.text())}
