"""A throwaway PostgreSQL server on the orchestrator for full database restore tests.

A dump is hostile input (SPEC §10a): restoring it runs its functions, triggers and
constraints. So the server runs as `restore_user` (account.py), unprivileged, and what it
reads it cannot change. `throwaway()` makes `scratch_dir/JOB.pg-XXXXXXXX`:

    JOB.pg-XXXXXXXX/  backupctl's user, 0711: the restore user passes, cannot list or write
      postgresql.conf, pg_hba.conf, pg_ident.conf  0644, backupctl's (`-c config_file=`)
      NAME.pgdump     0600, backupctl's: read by pg_restore, never by the server
      data/           the restore user's, 0700 (initdb)
      run/            the restore user's, 0711: the Unix socket, on a random port

No TCP address, fsync off. Authentication is `peer` through one map: only the
operating-system user running backupctl may log in, as `postgres` (the superuser: creates
the restore role and its database, nothing else, `admin()`) or as `backupctl_restore`
(NOSUPERUSER NOCREATEDB NOCREATEROLE, no server-program or server-file role: pg_restore,
the row counts and the checks). Neither the server's own user nor any other local user can
log in, and no password exists. A dump's `COPY ... TO PROGRAM` is refused.

On leaving the `with` block, also through an exception or SIGTERM (the CLI turns it into an
exception), the server is stopped and the directory wiped. A run killed outright leaves the
directory (and possibly a running postmaster) behind: `cleanup_leftovers()` stops such a
postmaster, after checking through /proc that the process really serves that directory, and
wipes it; the next run calls it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import secrets
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from backupctl.databases.account import ServerUser
from backupctl.databases.redact import redact
from backupctl.execute import Runner, cleaning_up
from backupctl.files import wipe

PG_ROOT = Path("/usr/lib/postgresql")
# Where server programs are installed, one directory per major version: Debian/Ubuntu
# (postgresql-common) and PGDG on RHEL-likes; `pg_config --bindir` is asked besides.
PG_ROOTS = ((PG_ROOT, "*/bin"), (Path("/usr"), "pgsql-*/bin"))
SUPERUSER = "postgres"
RESTORE_ROLE = "backupctl_restore"  # owns the restored database; no superuser
SOCKET_PATH_MAX = 107  # sun_path, minus the terminating NUL
PREFIX = ".pg-"
# pg_ctl puts the data directory into a `sh -c` string in double quotes, and our -o with
# the config file in single quotes.
_SHELL_UNSAFE = re.compile(r"[\"'\\$`\n]")
_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_restore")


class ClusterError(Exception):
    """The throwaway server could not be made: nothing was proven (never bad data)."""


@dataclass(frozen=True)
class PgBin:
    """The PostgreSQL programs used for restore tests."""

    path: Path
    version: str  # e.g. "15.18"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> str:
        return str(self.path / name)


def candidates(runner: Runner, explicit: Path | None = None) -> list[Path]:
    """Directories holding a full set of server programs: Debian's /usr/lib/postgresql/N/bin,
    PGDG's /usr/pgsql-N/bin and `pg_config --bindir`, each once (never one version named in
    code)."""
    if explicit is not None:
        return [explicit]
    found = [path for root, pattern in PG_ROOTS for path in sorted(root.glob(pattern))]
    config = runner.run(["pg_config", "--bindir"], timeout=60)
    if config.ok and (bindir := config.stdout.decode(errors="replace").strip()):
        found.append(Path(bindir))
    unique: dict[str, Path] = {}
    for path in found:
        if all((path / t).exists() for t in _TOOLS):
            unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def find_pg_bin(runner: Runner, explicit: Path | None = None) -> PgBin:
    """The newest PostgreSQL on this machine (or `explicit`), with its version."""
    found = []
    for path in candidates(runner, explicit):
        result = runner.run([str(path / "pg_restore"), "--version"], timeout=60)
        match = re.search(r"(\d+)(?:\.(\d+))?", result.stdout.decode(errors="replace"))
        if result.ok and match:
            found.append((tuple(int(n or 0) for n in match.groups()), PgBin(path, ".".join(
                n for n in match.groups() if n is not None))))
    if found:
        return max(found, key=lambda f: f[0])[1]
    where = explicit or f"{PG_ROOT}/*/bin, /usr/pgsql-*/bin or `pg_config --bindir`"
    raise ClusterError(f"no PostgreSQL server programs ({', '.join(_TOOLS)}) in {where} on "
                       "the orchestrator: install the postgresql package (the same or a newer "
                       "major version than the servers being backed up)")


@dataclass(frozen=True)
class Cluster:
    """A running throwaway server: connect through `socket_dir` and `port`."""

    root: Path
    port: int
    pg: PgBin
    user: ServerUser

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    def conninfo(self, dbname: str, *, role: str = RESTORE_ROLE) -> str:
        """A libpq connection string (psycopg) to `dbname`, as the restore role unless told."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=str(self.socket_dir), port=self.port, user=role,
                             dbname=dbname)

    def client_args(self) -> list[str]:
        """--host/--port/--username for pg_restore: the restore role, never the superuser
        (peer authentication: no password)."""
        return ["--host", str(self.socket_dir), "--port", str(self.port),
                "--username", RESTORE_ROLE, "--no-password"]

    def create_database(self, name: str) -> None:
        """The restore role and `name`, owned by it: the superuser's only work."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo("postgres", role=SUPERUSER), autocommit=True) as su:
            # BYPASSRLS: the owner counts every row even under FORCE ROW LEVEL SECURITY,
            # as the superuser did; it grants no program or file access.
            su.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                               "NOREPLICATION BYPASSRLS").format(
                                   sql.Identifier(RESTORE_ROLE)))
            su.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING "
                               "'UTF8' LOCALE 'C'").format(sql.Identifier(name),
                                                          sql.Identifier(RESTORE_ROLE)))


def _make_root(root: Path, user: ServerUser, runner: Runner) -> None:
    """data/ and run/ owned by the restore user inside the 0711 root."""
    if os.geteuid() == 0:
        for name, mode in (("data", 0o700), ("run", 0o711)):
            (root / name).mkdir(mode=mode)
            (root / name).chmod(mode)  # whatever the umask
            os.chown(root / name, user.uid, user.gid)
        root.chmod(0o711)
        return
    # Without root only the restore user can make directories it owns: it may write into
    # the (unlisted, randomly named) root for this one command.
    root.chmod(0o733)
    try:
        made = runner.run([*user.prefix, "mkdir", "-m", "0711", str(root / "run"),
                           str(root / "data")], timeout=60)
    finally:
        root.chmod(0o711)
    if not made.ok:
        raise ClusterError(f"restore_user {user.name} could not make its directories in "
                           f"{root}: {redact(made.stderr)}")


def _check_paths(root: Path, port: int) -> None:
    if _SHELL_UNSAFE.search(str(root)):
        raise ClusterError(f"scratch_dir {root.parent} contains a character pg_ctl cannot "
                           "take (' \" \\ $ ` or a newline); use a plainer scratch_dir")
    socket = root / "run" / f".s.PGSQL.{port}"
    if len(os.fsencode(socket)) > SOCKET_PATH_MAX:
        raise ClusterError(f"the throwaway server's socket {socket} would be longer than "
                           f"{SOCKET_PATH_MAX} bytes (a Unix socket limit); use a shorter "
                           "scratch_dir or job name")


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _write_config(root: Path, port: int) -> None:
    """The server's settings, who may log in (peer, one map) and as whom: files of
    backupctl's user the server reads and cannot change."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    files = {
        "postgresql.conf": (
            "# backupctl restore test: no TCP, a socket in run/, no fsync\n"
            f"listen_addresses = ''\nport = {port}\n"
            f"unix_socket_directories = {_quoted(root / 'run')}\n"
            # anyone may reach the socket; only backupctl's user passes peer authentication
            "unix_socket_permissions = 0777\n"
            f"hba_file = {_quoted(root / 'pg_hba.conf')}\n"
            f"ident_file = {_quoted(root / 'pg_ident.conf')}\n"
            "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n"
            "max_wal_size = '2GB'\nlogging_collector = off\n"
            # no replica, no archive: a table's COPY skips most WAL (pg_restore of a
            # pgbench scale-65 dump 5.2 → 4.4 s)
            "wal_level = minimal\nmax_wal_senders = 0\nmax_connections = 20\n"),
        "pg_hba.conf": "local all all peer map=backupctl\n",
        "pg_ident.conf": "".join(f'backupctl "{me}" "{role}"\n'
                                 for role in (SUPERUSER, RESTORE_ROLE)),
    }
    for name, text in files.items():
        fd = os.open(root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(text)


@contextlib.contextmanager
def throwaway(runner: Runner, *, scratch_dir: Path, job: str, pg: PgBin, user: ServerUser,
              timeout: float | None, problems: list[str],
              timings: dict[str, int]) -> Iterator[Cluster]:
    """Start a throwaway server as `user`; stop it and wipe its directory whatever happens.

    Failures to stop or wipe are appended to `problems` (the next run cleans up).
    """
    port = 20000 + secrets.randbelow(40000)
    scratch_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = Path(tempfile.mkdtemp(prefix=f"{job}{PREFIX}", dir=scratch_dir))
    started = False
    try:
        _check_paths(root, port)
        _make_root(root, user, runner)
        _write_config(root, port)
        clock = time.monotonic()
        data = str(root / "data")
        init = runner.run([*user.prefix, pg.tool("initdb"), "-D", data, "--auth-local=peer",
                           "--auth-host=reject", "-U", SUPERUSER, "--no-sync", "-E", "UTF8",
                           "--locale=C"], timeout=timeout)
        if not init.ok:
            raise ClusterError(f"initdb failed {init.argv!r}: {redact(init.stderr)}")
        timings["initdb"] = _ms(clock)
        clock = time.monotonic()
        started = True  # even a failed or interrupted start may leave a postmaster behind
        start = runner.run([*user.prefix, pg.tool("pg_ctl"), "-D", data, "-w", "-t", "120",
                            "-s", "-l", f"{data}/server.log", "-o",
                            f"-c config_file='{root}/postgresql.conf'", "start"],
                           timeout=timeout)
        if not start.ok:
            log = _read_tail(runner, root / "data" / "server.log", user)
            raise ClusterError(f"the throwaway PostgreSQL server did not start: "
                               f"{redact(start.stderr + log)}")
        timings["server_start"] = _ms(clock)
        yield Cluster(root=root, port=port, pg=pg, user=user)
    finally:
        clock = time.monotonic()
        if not started or _stop(runner, root, pg, user):
            try:
                _wipe(runner, root, user)
            except OSError as exc:
                problems.append(f"could not wipe the throwaway server's directory {root}: "
                                f"{exc}; it is wiped on the next run")
        else:  # never wipe the files of a running server: the next run stops it first
            problems.append(f"could not stop the throwaway PostgreSQL server of {root}; the "
                            "next run stops it and wipes the directory")
        timings["stop_wipe"] = _ms(clock)


def _wipe(runner: Runner, root: Path, user: ServerUser | None) -> None:
    """Root wipes everything; another user first has the restore user empty its own
    directories (the entries in root are backupctl's to remove)."""
    if os.geteuid() != 0 and user is not None:
        mine = [str(root / n) for n in ("data", "run") if (root / n).exists()]
        if mine:
            with cleaning_up():
                runner.run([*user.prefix, "find", *mine, "-mindepth", "1", "-delete"],
                           timeout=600)
            for name in mine:
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(name)
    wipe(root)


def _stop(runner: Runner, root: Path, pg: PgBin, user: ServerUser) -> bool:
    """Stop the server (pg_ctl, else signals); True once no postmaster serves `root`.

    Runs also after SIGTERM (`cleaning_up`: the runner still starts pg_ctl then)."""
    with cleaning_up():
        runner.run([*user.prefix, pg.tool("pg_ctl"), "-D", str(root / "data"), "-m",
                    "immediate", "-w", "-t", "60", "-s", "stop"], timeout=120)
    pid = postmaster_of(root / "data")
    return pid is None or stop_postmaster(pid, runner=runner, user=user)


def _ms(since: float) -> int:
    return round((time.monotonic() - since) * 1000)


def _read_tail(runner: Runner, path: Path, user: ServerUser, size: int = 4096) -> str:
    """The end of the server's log (the restore user's file: read as that user)."""
    result = runner.run([*user.prefix, "tail", "-c", str(size), str(path)], timeout=60)
    return "\n" + result.stdout.decode("utf-8", "replace") if result.ok else ""


def postmaster_of(data: Path) -> int | None:
    """The pid of the postmaster serving `data`, if one is running.

    The pid comes from postmaster.pid and is trusted only when /proc shows that process
    with `data` as its working directory (a postmaster changes into its data directory), so
    a recycled pid of an unrelated process is never signalled. A user who may not read the
    restore user's postmaster.pid looks for `postgres -D DATA` in /proc instead.
    """
    try:
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    except PermissionError:
        return next((int(p) for p in os.listdir("/proc") if p.isdigit()
                     and _names_data(int(p), data)), None)
    except (OSError, ValueError, IndexError):
        return None
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except PermissionError:  # another user's process we may not inspect: its command line
        return pid if _names_data(pid, data) else None
    except OSError:
        return None
    with contextlib.suppress(OSError):
        if os.path.samefile(cwd, data):
            return pid
    return None


def _names_data(pid: int, data: Path) -> bool:
    """`postgres -D DATA` (how pg_ctl starts it) with this very data directory."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(a == b"-D" and b == os.fsencode(data) for a, b in itertools.pairwise(argv))


def stop_postmaster(pid: int, *, wait: float = 15.0, runner: Runner | None = None,
                    user: ServerUser | None = None) -> bool:
    """SIGQUIT (immediate shutdown), then SIGKILL; True once the process is gone.

    A process of the restore user that backupctl (not root) may not signal is signalled
    as that user (`kill` through sudo)."""
    for sig, grace in ((signal.SIGQUIT, wait), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            if runner is None or user is None:
                return False
            with cleaning_up():
                runner.run([*user.prefix, "kill", f"-{sig.name.removeprefix('SIG')}",
                            str(pid)], timeout=60)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.05)
    return not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def leftovers(scratch_dir: Path, job: str | None = None) -> list[Path]:
    """Throwaway-server directories of a crashed run (`JOB.pg-*`, or every job's)."""
    pattern = f"{job}{PREFIX}*" if job else f"*{PREFIX}*"
    with contextlib.suppress(OSError):
        return sorted(p for p in scratch_dir.glob(pattern) if p.is_dir() and not p.is_symlink())
    return []


def _owner(root: Path) -> ServerUser | None:
    """The user a leftover server ran as (its data directory's owner), or None."""
    try:
        info = (root / "data").lstat()
        entry = pwd.getpwuid(info.st_uid)
    except (OSError, KeyError):
        return None
    if info.st_uid in (0, os.geteuid()):
        return None
    return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, frozenset())


def cleanup_leftovers(scratch_dir: Path, job: str | None = None) -> list[str]:
    """Stop a postmaster still serving a leftover directory, then wipe it; what was done.

    Call it before anything else wipes `scratch_dir/JOB.*` (a wiped data directory under a
    running postmaster would leave the server running on deleted files), and leave alone
    what it could not stop (`leftovers()` still lists it). The server ran as its data
    directory's owner (restore_user then): without root, that user stops and empties it.
    """
    from backupctl.execute.local import LocalRunner

    done = []
    runner = LocalRunner()
    for root in leftovers(scratch_dir, job):
        owner = _owner(root)
        pid = postmaster_of(root / "data")
        if pid is not None:
            stopped = stop_postmaster(pid, runner=runner, user=owner)
            done.append(f"stopped the throwaway PostgreSQL server (pid {pid}) of {root}"
                        if stopped else f"could not stop PostgreSQL pid {pid} of {root}")
            if not stopped:
                continue  # never wipe a live server's files
        try:
            _wipe(runner, root, owner)
            done.append(f"wiped {root}")
        except OSError as exc:
            done.append(f"could not wipe {root}: {exc}")
    return done
