"""Shared fixtures: real restic repositories, a real sshd on loopback, job workspaces.

Integration tests use the real components (restic, OpenSSH, the backupctl CLI as a
subprocess); unit tests use fakes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString, TypedDict

import pytest

from backupctl.config.schema import GlobalConfig
from tests import cli_fork, restic_kdf, yaml_helpers

# Like backupctl itself (and a careful admin): files the tests write are private.
os.umask(0o077)

PASSWORD = "correct-horse-battery-staple-7f3a"  # test repository password (looked for in leaks)
BACKUPCTL = [sys.executable, "-m", "backupctl"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists()
                                    else None)
    if path is None:
        pytest.fail(f"{binary} is not installed: run `make install` (CI installs it)")
    return path


RESTORE_USER = "backupctl-restore"  # restore_user's default (SPEC 10a)


@pytest.fixture(scope="session", autouse=True)
def restore_user() -> str:
    """The system user of the throwaway PostgreSQL servers, as `make install` makes it:
    created here when missing (as root only), never removed (the machine's, like a
    package's user). Several workers may race to create it: the last look decides."""
    import pwd

    def exists() -> bool:
        try:
            pwd.getpwnam(RESTORE_USER)
        except KeyError:
            return False
        return True

    if not exists() and os.geteuid() == 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", RESTORE_USER], capture_output=True, check=False)
    if not exists():
        pytest.fail(f"no {RESTORE_USER} user: run `make install` (as root)")
    return RESTORE_USER


# -- restic -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def restic_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised repository (restic init costs ~3 s of scrypt); tests copy it."""
    need("restic")
    root = tmp_path_factory.mktemp("template")
    pw = root / "pw"
    pw.write_text(PASSWORD + "\n")
    subprocess.run(["restic", "init", "-q", "--repo", str(root / "repo"), "--password-file",
                    str(pw)], check=True, capture_output=True)
    restic_kdf.cheapen(root / "repo", PASSWORD)
    return root / "repo"


def restic(repo: Path | str, *args: str, password: str = PASSWORD,
           check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """restic run by the test itself (not by backupctl), password on stdin."""
    return subprocess.run(["restic", "--repo", str(repo), "--password-file", "/dev/stdin",
                           "--no-cache", *args], input=(password + "\n").encode(),
                          capture_output=True, check=check)


# -- sshd -------------------------------------------------------------------------------

@dataclass
class Sshd:
    port: int
    root: Path
    identity: Path
    known_hosts: Path
    host_key: Path
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        Path("/run/sshd").mkdir(exist_ok=True, mode=0o755)
        sshd = need("sshd")
        subprocess.run([sshd, "-t", "-f", str(self.config)], check=True)
        self.proc = subprocess.Popen([sshd, "-D", "-f", str(self.config), "-E", str(self.log)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"SSH"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def fingerprint(self) -> str:
        out = subprocess.run(["ssh-keygen", "-lf", str(self.host_key) + ".pub"], check=True,
                             capture_output=True, text=True).stdout
        return out.split()[1]

    def known_hosts_line(self) -> str:
        pub = Path(str(self.host_key) + ".pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n"

    def trust(self) -> None:
        self.known_hosts.write_text(self.known_hosts_line())

    def rotate_host_key(self) -> None:
        """The server is 'reinstalled': a new host key, same address."""
        self.stop()
        for p in (self.host_key, Path(str(self.host_key) + ".pub")):
            p.unlink()
        _keygen(self.host_key)
        self.start()


def contain_temp(root: Path) -> dict[str, str]:
    """TMPDIR and XDG_CACHE_HOME (restic's cache) under `root`, created."""
    env = {"TMPDIR": str(root / "tmp"), "XDG_CACHE_HOME": str(root / "cache")}
    for path in env.values():
        Path(path).mkdir(mode=0o700, exist_ok=True)
    return env


@pytest.fixture
def contained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's processes (the CLI, restic, hooks) keep their temporary files and
    restic's cache under the test's directory, so a leak scan of that directory sees every
    file they wrote, and none of other tests' in /tmp."""
    root = tmp_path / "own"
    root.mkdir()
    for name, value in contain_temp(root).items():
        monkeypatch.setenv(name, value)
    return root


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def make_sshd(root: Path) -> Sshd:
    """Sessions keep their temporary files and restic's cache under `root` (SetEnv TMPDIR,
    XDG_CACHE_HOME): the "server's disk" a test scans is its own directory, not /tmp."""
    root.mkdir(parents=True, exist_ok=True)
    env = contain_temp(root)
    host_key, identity = root / "host_key", root / "id_ed25519"
    _keygen(host_key)
    _keygen(identity)
    authorized = root / "authorized_keys"
    shutil.copy(str(identity) + ".pub", authorized)
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {root}/sshd.pid\n"
        f"AuthorizedKeysFile {authorized}\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
        "MaxSessions 50\nMaxStartups 50\n"
        + "".join(f"SetEnv {name}={value}\n" for name, value in env.items()))
    return Sshd(port=port, root=root, identity=identity, known_hosts=root / "known_hosts",
                host_key=host_key, config=config, log=root / "sshd.log")


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real OpenSSH server on a free loopback port, its key already in known_hosts."""
    server = make_sshd(tmp_path / "sshd")
    server.start()
    server.trust()
    yield server
    server.stop()


class SshTiming(TypedDict):
    """SshRunner's dead-peer keyword arguments (seconds)."""

    keepalive: int
    dead_after: int


# A runner a test builds itself gets what a runner built from the default configuration gets.
TIMING = SshTiming(keepalive=GlobalConfig.model_fields["ssh_keepalive"].default,
                   dead_after=GlobalConfig.model_fields["ssh_dead_after"].default)


# -- rclone REST servers (append-only copies, URLs with credentials) -----------------------

@dataclass
class RestServer:
    """`rclone serve restic` on loopback serving `root` (a restic repository)."""

    root: Path
    port: int
    append_only: bool
    proc: subprocess.Popen[bytes]
    user: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"rest:http://{auth}127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rclone exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"rclone did not listen on {port}: {log.read_text()}")


@pytest.fixture
def rest_server(tmp_path: Path) -> Iterator[Callable[..., RestServer]]:
    """Factory: rest_server(repo_dir, append_only=True) → a running server (stopped after)."""
    rclone = need("rclone")
    started: list[RestServer] = []

    def start(root: Path, *, append_only: bool = True, user: str | None = None,
              password: str | None = None) -> RestServer:
        port = free_port()
        log = tmp_path / f"rclone-{port}.log"
        argv = [rclone, "serve", "restic", "--addr", f"127.0.0.1:{port}", "--config",
                "/dev/null", str(root)]
        if append_only:
            argv.insert(3, "--append-only")
        if user is not None:  # basic auth from an htpasswd file: no password in its argv
            digest = hashlib.sha1((password or "").encode()).digest()
            htpasswd = tmp_path / f"htpasswd-{port}"
            htpasswd.write_text(f"{user}:{{SHA}}{base64.b64encode(digest).decode()}\n")
            argv[3:3] = ["--htpasswd", str(htpasswd)]
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        server = RestServer(root, port, append_only, proc, user, password)
        started.append(server)
        _wait_port(port, proc, log)
        return server

    yield start
    for server in started:
        server.stop()


# -- workspaces ---------------------------------------------------------------------------

@dataclass
class Workspace:
    """A global config, jobs dir, state and scratch dirs, and a source tree per job."""

    root: Path
    repo_template: Path
    known_hosts: Path
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "backupctl.yaml"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def scratch_dir(self) -> Path:
        return self.root / "scratch"

    @property
    def evidence_key(self) -> Path:
        """Not made until a test runs `evidence init-key` (records are unsigned before)."""
        return self.root / "evidence.key"

    def write_config(self, **extra: Any) -> None:
        data = {"jobs_dir": str(self.jobs_dir), "state_dir": str(self.state_dir),
                "scratch_dir": str(self.scratch_dir), "known_hosts": str(self.known_hosts),
                "evidence_key": str(self.evidence_key), "concurrency": 2, **self.settings,
                **extra}
        self.config.write_text(yaml_helpers.dump(data))

    def new_repo(self, name: str) -> Path:
        """A fresh initialised repository (copied from the session template)."""
        target = self.root / "repos" / name
        shutil.copytree(self.repo_template, target)
        return target

    def password_file(self, name: str = "pw", password: str = PASSWORD) -> Path:
        path = self.root / "secrets" / name
        path.parent.mkdir(exist_ok=True, mode=0o700)
        path.write_text(password + "\n")
        path.chmod(0o600)
        return path

    def job(self, name: str, *, source: Path | None = None, sshd: Sshd | None = None,
            repo: Path | None = None, **overrides: Any) -> dict[str, Any]:
        """Write jobs/NAME.yaml (a local job, or over `sshd`) and return its data."""
        source = source or self.root / "src" / name
        source.mkdir(parents=True, exist_ok=True)
        repo = repo or self.new_repo(name)
        host: dict[str, Any] = {"address": "local"}
        if sshd is not None:
            host = {"address": "127.0.0.1", "port": sshd.port, "user": "root",
                    "identity_file": str(sshd.identity)}
        data: dict[str, Any] = {
            "job": name, "description": f"テスト {name}", "host": host,
            "source": {"paths": [str(source)]},
            "repository": {"url": str(repo), "password_file": str(self.password_file())},
            "generations": {"last": 3},
            "schedule": {"backup": "*-*-* 02:00:00", "verify": "Sun *-*-* 04:00:00"},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        self.jobs_dir.mkdir(exist_ok=True)
        (self.jobs_dir / f"{name}.yaml").write_text(yaml_helpers.dump(data))
        return data

    def run(self, *args: str, check: bool = False, timeout: float = 300,
            env: dict[str, str] | None = None, input: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """The real CLI in a process of its own (forked from one that imported it once:
        tests/cli_fork.py)."""
        return cli_fork.run(["-c", str(self.config), *args], timeout=timeout, check=check,
                            env={**os.environ, **(env or {})}, input=input)


@pytest.fixture
def workspace(tmp_path: Path, restic_template: Path) -> Workspace:
    ws = Workspace(root=tmp_path / "ws", repo_template=restic_template,
                   known_hosts=tmp_path / "ws" / "known_hosts")
    ws.root.mkdir()
    ws.write_config()
    return ws


@pytest.fixture
def ssh_workspace(workspace: Workspace, sshd: Sshd) -> Workspace:
    """A workspace whose known_hosts trusts the test sshd."""
    shutil.copy(sshd.known_hosts, workspace.known_hosts)
    return workspace


# -- PostgreSQL ---------------------------------------------------------------------------

def _newest_pg_bin() -> Path:
    """The newest installed PostgreSQL's programs, the major version backupctl's own restore
    tests pick (`backupctl.databases.cluster.candidates`, not imported here so that a
    conftest import error never hides the module's own)."""
    root = Path("/usr/lib/postgresql")
    majors = [int(p.name) for p in root.glob("*")
              if p.name.isdigit() and (p / "bin" / "initdb").exists()]
    return root / (str(max(majors)) if majors else "NOT-INSTALLED") / "bin"


PG_BIN = _newest_pg_bin()
LISTEN = ("127.0.0.1", "127.0.0.2")  # the second is for clients whose network a test cuts


@dataclass
class PgServer:
    """A PostgreSQL server started by the tests: loopback only, fsync off, `postgres` trusted."""

    port: int
    data: Path

    def create(self, dbname: str) -> None:
        self._admin("CREATE DATABASE {}", dbname)

    def drop(self, dbname: str) -> None:
        """Drop the database, ending any session still connected to it."""
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", dbname)

    def _admin(self, statement: LiteralString, dbname: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(host=LISTEN[0], port=self.port, user="postgres",
                             dbname="postgres", autocommit=True, connect_timeout=30) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(dbname)))


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    """initdb and start a server on a free port (as `postgres`: it refuses root); stopped and
    wiped on leaving."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL is not installed: run `make install`")
    need("runuser")
    data = Path(tempfile.mkdtemp(prefix="backupctl-pg-"))
    shutil.chown(data, "postgres", "postgres")
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run([*as_pg, str(PG_BIN / "initdb"), "-D", str(data / "db"), "-A", "trust",
                        "-U", "postgres", "--no-sync"], check=True, capture_output=True)
        # Every module of a test process shares this server (a database each), so room for
        # the connections their pools may leave open until the module's database is dropped.
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-w", "-l",
                        str(data / "log"), "-o",
                        f"-c listen_addresses={','.join(LISTEN)} -p {port} -k {data} "
                        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                        "-c max_connections=300",
                        "start"], check=True, capture_output=True)
        yield PgServer(port=port, data=data)
    finally:
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-m", "fast",
                        "-w", "stop"], capture_output=True, check=False)
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class Postgres:
    """One database of a test server: what a test module connects to."""

    server: PgServer
    dbname: str

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.url_via(LISTEN[0])

    def url_via(self, address: str) -> str:
        """`url` through another of the server's loopback addresses (LISTEN): a fault test can
        cut one client's network (iptables on that address) and leave the others' alone."""
        return f"postgresql://postgres@{address}:{self.port}/{self.dbname}"

    def empty_url(self) -> str:
        """`url`, after dropping every backupctl table an earlier test of the module made."""
        from sqlalchemy import create_engine

        from backupctl.state.schema import metadata

        engine = create_engine(self.url.replace("postgresql://", "postgresql+psycopg://", 1))
        metadata.drop_all(engine)
        engine.dispose()
        return self.url


@contextlib.contextmanager
def silent_cut(address: str, port: int) -> Iterator[None]:
    """Drop every packet between `address` and the local TCP `port`, both ways, without a
    reset (a dead switch); the iptables rules go when the block ends."""
    iptables = need("iptables")
    rules = [["-i", "lo", "-d", address, "-p", "tcp", "--dport", str(port), "-j", "DROP"],
             ["-i", "lo", "-s", address, "-p", "tcp", "--sport", str(port), "-j", "DROP"]]
    added: list[list[str]] = []
    try:
        for rule in rules:
            subprocess.run([iptables, "-I", "INPUT", *rule], check=True)
            added.append(rule)
        yield
    finally:
        for rule in added:
            subprocess.run([iptables, "-D", "INPUT", *rule], check=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[str]:
    """An empty state database: SQLite, then a real PostgreSQL (`postgres`)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('state') / 'state.db'}"
        return
    postgres: Postgres = request.getfixturevalue("postgres")
    yield postgres.empty_url()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    """One PostgreSQL server per test process (each xdist worker has its own), started when a
    module first needs it: initdb and start are paid once, not once per module. Tests that
    cut the network do it on LISTEN[1], which only the cutting test uses, and a worker runs
    one test at a time; advisory locks (leases) are per database."""
    with pg_server() as server:
        yield server


@pytest.fixture(scope="module")
def postgres(postgres_server: PgServer) -> Iterator[Postgres]:
    """A fresh database for the module on the process's server (`postgres.url`); dropped
    afterwards with any connection still open to it."""
    name = f"test_{secrets.token_hex(6)}"
    postgres_server.create(name)
    try:
        yield Postgres(postgres_server, name)
    finally:
        postgres_server.drop(name)


@pytest.fixture(autouse=True)
def _isolated_secret_registry() -> Iterator[None]:
    """Secrets registered for masking by one test must not mask another test's text."""
    from backupctl import log

    saved = set(log._SECRETS)
    yield
    with log._LOCK:
        log._SECRETS.clear()
        log._SECRETS.update(saved)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Background CLI processes; their process groups are killed after the test."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
