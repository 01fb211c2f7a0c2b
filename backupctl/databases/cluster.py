"""A throwaway PostgreSQL server on the orchestrator for full database restore tests.

`throwaway()` makes `scratch_dir/JOB.pg-XXXXXXXX` (0700), runs `initdb` in it (as the
`postgres` user when backupctl runs as root: initdb and postgres refuse root), and starts a
server that listens on no TCP address (`listen_addresses = ''`), only on a Unix socket in
that directory, on a random port number, with fsync off. On leaving the `with` block, also
through an exception or SIGTERM (the CLI turns it into an exception), the server is stopped
and the directory wiped. A run killed outright leaves the directory (and possibly a running
postmaster) behind: `cleanup_leftovers()` stops such a postmaster, after checking through
/proc that the process really serves that directory, and wipes it; the next run calls it.
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

from backupctl.databases.redact import redact
from backupctl.execute import Runner, cleaning_up
from backupctl.files import wipe

PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
OS_USER = "postgres"  # runs initdb and the server when backupctl runs as root
SOCKET_PATH_MAX = 107  # sun_path, minus the terminating NUL
PREFIX = ".pg-"
# pg_ctl puts the data directory into a `sh -c` string in double quotes.
_SHELL_UNSAFE = re.compile(r'["\\$`\n]')
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


def candidates(explicit: Path | None = None) -> list[Path]:
    """Directories holding a full set of server programs, newest major first."""
    if explicit is not None:
        return [explicit]
    found = []
    with contextlib.suppress(OSError):
        for entry in PG_ROOT.iterdir():
            if entry.name.isdigit() and all((entry / "bin" / t).exists() for t in _TOOLS):
                found.append((int(entry.name), entry / "bin"))
    return [path for _, path in sorted(found, reverse=True)]


def find_pg_bin(runner: Runner, explicit: Path | None = None) -> PgBin:
    """The newest PostgreSQL on this machine (or `explicit`), with its version."""
    for path in candidates(explicit):
        result = runner.run([str(path / "pg_restore"), "--version"], timeout=60)
        match = re.search(r"(\d+(?:\.\d+)?)", result.stdout.decode(errors="replace"))
        if result.ok and match:
            return PgBin(path, match.group(1))
    where = explicit or f"{PG_ROOT}/*/bin"
    raise ClusterError(f"no PostgreSQL server programs ({', '.join(_TOOLS)}) in {where} on "
                       "the orchestrator: install the postgresql package (the same or a newer "
                       "major version than the servers being backed up)")


@dataclass(frozen=True)
class Cluster:
    """A running throwaway server: connect through `socket_dir` and `port`."""

    root: Path
    port: int
    pg: PgBin

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def conninfo(self, dbname: str) -> str:
        """A libpq connection string (psycopg) to `dbname` on this server."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=str(self.socket_dir), port=self.port, user=SUPERUSER,
                             dbname=dbname)

    def client_args(self) -> list[str]:
        """--host/--port/--username for pg_restore and psql (no password: trust, 0700)."""
        return ["--host", str(self.socket_dir), "--port", str(self.port),
                "--username", SUPERUSER, "--no-password"]


def _as_server_user() -> list[str]:
    return ["runuser", "-u", OS_USER, "--"] if os.geteuid() == 0 else []


def _make_root(scratch_dir: Path, job: str) -> Path:
    scratch_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = Path(tempfile.mkdtemp(prefix=f"{job}{PREFIX}", dir=scratch_dir))
    root.chmod(0o700)
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(OS_USER)
        except KeyError:
            wipe(root)
            raise ClusterError(f"backupctl runs as root and there is no {OS_USER!r} user to run "
                               "the throwaway PostgreSQL server (install the postgresql "
                               "package)") from None
        os.chown(root, user.pw_uid, user.pw_gid)
    return root


def _check_paths(root: Path, port: int) -> None:
    if _SHELL_UNSAFE.search(str(root)):
        raise ClusterError(f"scratch_dir {root.parent} contains a character pg_ctl cannot "
                           "take (\" \\ $ ` or a newline); use a plainer scratch_dir")
    socket = root / f".s.PGSQL.{port}"
    if len(os.fsencode(socket)) > SOCKET_PATH_MAX:
        raise ClusterError(f"the throwaway server's socket {socket} would be longer than "
                           f"{SOCKET_PATH_MAX} bytes (a Unix socket limit); use a shorter "
                           "scratch_dir or job name")


def _settings(root: Path, port: int) -> str:
    quoted = str(root).replace("'", "''")
    return ("\n# backupctl restore test: no TCP, a socket in the 0700 directory, no fsync\n"
            f"listen_addresses = ''\nport = {port}\nunix_socket_directories = '{quoted}'\n"
            "unix_socket_permissions = 0700\nfsync = off\nfull_page_writes = off\n"
            "synchronous_commit = off\nmax_wal_size = '2GB'\nlogging_collector = off\n"
            # no replica, no archive: a table's COPY skips most WAL (pg_restore of a
            # pgbench scale-65 dump 5.2 → 4.4 s)
            "wal_level = minimal\nmax_wal_senders = 0\n"
            "max_connections = 20\n")


@contextlib.contextmanager
def throwaway(runner: Runner, *, scratch_dir: Path, job: str, pg: PgBin,
              timeout: float | None, problems: list[str],
              timings: dict[str, int]) -> Iterator[Cluster]:
    """Start a throwaway server; stop it and wipe its directory whatever happens.

    Failures to stop or wipe are appended to `problems` (the next run cleans up).
    """
    port = 20000 + secrets.randbelow(40000)
    root = _make_root(scratch_dir, job)
    started = False
    try:
        _check_paths(root, port)
        as_user = _as_server_user()
        if as_user:
            probe = runner.run([*as_user, "test", "-w", str(root), "-a", "-x", str(root)],
                               timeout=60)
            if not probe.ok:
                raise ClusterError(
                    f"the {OS_USER} user cannot reach {root}: the throwaway PostgreSQL server "
                    f"runs as {OS_USER} (it refuses root). Let it traverse scratch_dir and its "
                    f"parents, e.g. chmod 0711 {scratch_dir} (every restore directory inside "
                    "stays 0700), or move scratch_dir")
        clock = time.monotonic()
        init = runner.run([*as_user, pg.tool("initdb"), "-D", str(root / "data"), "-A", "trust",
                           "-U", SUPERUSER, "--no-sync", "-E", "UTF8", "--locale=C"],
                          timeout=timeout)
        if not init.ok:
            raise ClusterError(f"initdb failed {init.argv!r}: {redact(init.stderr)}")
        with (root / "data" / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(_settings(root, port))
        timings["initdb"] = _ms(clock)
        clock = time.monotonic()
        started = True  # even a failed or interrupted start may leave a postmaster behind
        start = runner.run([*as_user, pg.tool("pg_ctl"), "-D", str(root / "data"), "-w",
                            "-t", "120", "-s", "-l", str(root / "server.log"), "start"],
                           timeout=timeout)
        if not start.ok:
            log = _read_tail(root / "server.log")
            raise ClusterError(f"the throwaway PostgreSQL server did not start: "
                               f"{redact(start.stderr + log)}")
        timings["server_start"] = _ms(clock)
        yield Cluster(root=root, port=port, pg=pg)
    finally:
        clock = time.monotonic()
        if not started or _stop(runner, root, pg):
            try:
                wipe(root)
            except OSError as exc:
                problems.append(f"could not wipe the throwaway server's directory {root}: "
                                f"{exc}; it is wiped on the next run")
        else:  # never wipe the files of a running server: the next run stops it first
            problems.append(f"could not stop the throwaway PostgreSQL server of {root}; the "
                            "next run stops it and wipes the directory")
        timings["stop_wipe"] = _ms(clock)


def _stop(runner: Runner, root: Path, pg: PgBin) -> bool:
    """Stop the server (pg_ctl, else signals); True once no postmaster serves `root`.

    Runs also after SIGTERM (`cleaning_up`: the runner still starts pg_ctl then)."""
    with cleaning_up():
        runner.run([*_as_server_user(), pg.tool("pg_ctl"), "-D", str(root / "data"), "-m",
                    "immediate", "-w", "-t", "60", "-s", "stop"], timeout=120)
    pid = postmaster_of(root / "data")
    return pid is None or stop_postmaster(pid)


def _ms(since: float) -> int:
    return round((time.monotonic() - since) * 1000)


def _read_tail(path: Path, size: int = 4096) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - size))
            return "\n" + f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def postmaster_of(data: Path) -> int | None:
    """The pid of the postmaster serving `data`, if one is running.

    The pid comes from postmaster.pid and is trusted only when /proc shows that process
    with `data` as its working directory (a postmaster changes into its data directory), so
    a recycled pid of an unrelated process is never signalled.
    """
    try:
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
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


def stop_postmaster(pid: int, *, wait: float = 15.0) -> bool:
    """SIGQUIT (immediate shutdown), then SIGKILL; True once the process is gone."""
    for sig, grace in ((signal.SIGQUIT, wait), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
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


def cleanup_leftovers(scratch_dir: Path, job: str | None = None) -> list[str]:
    """Stop a postmaster still serving a leftover directory, then wipe it; what was done.

    Call it before anything else wipes `scratch_dir/JOB.*` (a wiped data directory under a
    running postmaster would leave the server running on deleted files), and leave alone
    what it could not stop (`leftovers()` still lists it).
    """
    done = []
    for root in leftovers(scratch_dir, job):
        pid = postmaster_of(root / "data")
        if pid is not None:
            stopped = stop_postmaster(pid)
            done.append(f"stopped the throwaway PostgreSQL server (pid {pid}) of {root}"
                        if stopped else f"could not stop PostgreSQL pid {pid} of {root}")
            if not stopped:
                continue  # never wipe a live server's files
        try:
            wipe(root)
            done.append(f"wiped {root}")
        except OSError as exc:
            done.append(f"could not wipe {root}: {exc}")
    return done
