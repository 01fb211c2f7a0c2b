"""Benchmark: several orchestrators sharing one PostgreSQL (issue #15).

What it runs. One machine stands in for a site: a throwaway PostgreSQL 15 cluster (the shared
state), one OpenSSH server on loopback (every "server" of the site), and JOBS job files (default
50) whose `before` hook sleeps SLEEP seconds on the server (standing in for a database dump)
and whose small source tree is backed up with restic over SSH into a repository of its own.
For each orchestrator count N (default 1, 2, 3) it starts from an empty state database and
launches N orchestrator processes at the same moment, each with its own `orchestrator:` name,
state_dir and scratch_dir but the same jobs_dir, known_hosts and database_url:

    backupctl -c orchN.yaml backup --all --due --json

and measures the wall time from the launch to the last exit. Then it checks the outcome in
the shared database (every job backed up exactly once: one `success` run and one evidence
record per job, no failure) and reports, per N:

- wall time, and its ratio to N = 1 (ideal: 1/N);
- per-job overhead: (wall × N × concurrency − JOBS × SLEEP) / JOBS, the seconds each job
  costs beyond its sleep (SSH, restic, manifest, state writes, lease and --due checks);
- how the jobs were spread over the orchestrators, and how many each skipped (running
  elsewhere, or not due: done by another orchestrator before or while it took the lease).

`--no-due --orchestrators 1` measures one orchestrator without the due check (what a site
with one orchestrator runs). `--setup-only` builds everything (PostgreSQL, sshd,
repositories, job files, N configurations), runs `backupctl validate` with each
configuration, prints the commands it would time and keeps the work directory.

    .venv/bin/python bench/fleet.py [--jobs 50] [--sleep 2] [--orchestrators 1 2 3]
                                    [--concurrency 4] [--workdir DIR] [--keep] [--pin]
                                    [--cpus F] [--servers-cpus S] [--night-before]
                                    [--setup-only | --no-due]

--servers-cpus S holds the servers' side (sshd and every session it starts: the hosts'
restic, hooks and hashing helpers) to S CPUs in every round: with --cpus F and N × F + S
at most the machine's cores, rounds differ only in how many orchestrators there are (without
it, the servers get what the orchestrators leave, which is less with more orchestrators).

--night-before times the second night instead of the first: each round first backs up every
job untimed, dates those runs a day back (so every job is due again) and then times the next
night's round, on unchanged data, as most nights are (the kept listings are then used).

--cpus F puts each orchestrator (and every process it starts: restic, hooks) in a cgroup of
its own limited to F CPUs: N such orchestrators against one is the scaling of N separate
machines of F CPUs each, as long as N × F stays below the machine's cores (the servers'
side, sshd and PostgreSQL use the rest).

Runs as root (initdb via runuser, sshd). Prints a Markdown report on stdout for
docs/benchmarks.md. Deletes its work directory at the end unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from backupctl.databases.cluster import find_pg_bin
from backupctl.execute.local import LocalRunner

PASSWORD = "bench-password-not-secret"
BACKUPCTL = [sys.executable, "-m", "backupctl"]
# The newest installed PostgreSQL, as backupctl's restore tests pick it (no version in code).
PG_BIN = find_pg_bin(LocalRunner()).path
FILES_PER_JOB = 20
FILE_SIZE = 16 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True)


def _half_a_day_ago() -> str:
    """A daily OnCalendar time about 12 h away, in this machine's zone like the timers."""
    hour = (datetime.now().astimezone() + timedelta(hours=12)).hour
    return f"*-*-* {hour:02d}:00:00"


# -- the site: PostgreSQL, sshd, repositories, job files ----------------------------------

@dataclass
class Postgres:
    root: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        if not (PG_BIN / "initdb").exists():
            sys.exit("PostgreSQL 15 is not installed: run `make install`")
        self.root.mkdir(parents=True)
        shutil.chown(self.root, "postgres", "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
        run([*as_pg, str(PG_BIN / "initdb"), "-D", str(self.root / "db"), "-A", "trust",
             "-U", "postgres", "--no-sync"])
        run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(self.root / "db"), "-w", "-l",
             str(self.root / "log"), "-o",
             f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
             "-c max_connections=200", "start"])

    def stop(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D",
                        str(self.root / "db"), "-m", "fast", "-w", "stop"],
                       capture_output=True, check=False)

    def empty(self) -> None:
        """Drop every backupctl table: each round starts with every job due."""
        from sqlalchemy import create_engine

        from backupctl.state.schema import metadata

        engine = create_engine(self.url.replace("postgresql://", "postgresql+psycopg://", 1))
        metadata.drop_all(engine)
        engine.dispose()

    def query(self, sql: str) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.url) as conn:
            return [tuple(row) for row in conn.execute(sql)]


@dataclass
class Sshd:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    cpus: float | None = None  # --servers-cpus: sshd and every session in a cgroup of this
    group: Path | None = None

    @property
    def identity(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    def start(self) -> None:
        self.root.mkdir(parents=True)
        for key in ("host_key", "id_ed25519"):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.root / key)])
        shutil.copy(str(self.identity) + ".pub", self.root / "authorized_keys")
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.root / 'host_key'}\n"
            f"PidFile {self.root}/sshd.pid\nAuthorizedKeysFile {self.root}/authorized_keys\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "Subsystem sftp internal-sftp\nMaxSessions 100\nMaxStartups 200\n")
        Path("/run/sshd").mkdir(exist_ok=True, mode=0o755)
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        run([sshd, "-t", "-f", str(config)])
        group = self.group = (cpu_group("backupctl-bench-servers", self.cpus)
                              if self.cpus else None)
        self.proc = subprocess.Popen(
            [sshd, "-D", "-f", str(config), "-E", str(self.root / "sshd.log")],
            preexec_fn=(lambda: (group / "cgroup.procs").write_text(str(os.getpid())))
            if group else None)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                if s.recv(4).startswith(b"SSH"):
                    break
            time.sleep(0.05)
        else:
            sys.exit(f"sshd did not start: {(self.root / 'sshd.log').read_text()}")
        pub = (self.root / "host_key.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.group is not None:
            with contextlib.suppress(OSError):
                self.group.rmdir()


@dataclass
class Site:
    work: Path
    jobs: int
    sleep: float
    servers_cpus: float | None = None
    postgres: Postgres = field(init=False)
    sshd: Sshd = field(init=False)

    def __post_init__(self) -> None:
        self.postgres = Postgres(self.work / "pg")
        self.sshd = Sshd(self.work / "sshd", cpus=self.servers_cpus)

    @property
    def jobs_dir(self) -> Path:
        return self.work / "jobs"

    def names(self) -> list[str]:
        return [f"srv-{i:03d}" for i in range(self.jobs)]

    def build(self) -> None:
        """PostgreSQL, sshd, one initialised repository per job, source trees, job files."""
        self.postgres.start()
        self.sshd.start()
        secrets = self.work / "secrets"
        secrets.mkdir(mode=0o700)
        password = secrets / "pw"
        password.write_text(PASSWORD + "\n")
        password.chmod(0o600)
        template = self.work / "repo-template"
        run(["restic", "init", "-q", "--repo", str(template), "--password-file",
             str(password)])
        self.jobs_dir.mkdir()
        for name in self.names():
            source = self.work / "src" / name
            source.mkdir(parents=True)
            for i in range(FILES_PER_JOB):
                (source / f"record-{i:03d}.dat").write_bytes(os.urandom(FILE_SIZE))
            repo = self.work / "repos" / name
            shutil.copytree(template, repo)
            (self.jobs_dir / f"{name}.yaml").write_text(json.dumps({
                "job": name, "description": f"bench {name}",
                "host": {"address": "127.0.0.1", "port": self.sshd.port, "user": "root",
                         "identity_file": str(self.sshd.identity)},
                "source": {"paths": [str(source)], "before": [f"sleep {self.sleep:g}"]},
                "repository": {"url": str(repo), "password_file": str(password)},
                "generations": {"last": 3},
                "verify": {"sample": 2},
                # Fired ~12 h ago, fires again in ~12 h: every job is due once in an empty
                # state, and stays done for the rest of a round.
                "schedule": {"backup": _half_a_day_ago(), "verify": "Sun *-*-* 04:00:00"},
            }, indent=2) + "\n")  # JSON is YAML

    def orchestrator_config(self, name: str, *, concurrency: int) -> Path:
        """Its own name, state_dir and scratch_dir; the site's jobs, hosts and database."""
        root = self.work / "orchestrators" / name
        root.mkdir(parents=True, exist_ok=True)
        config = root / "backupctl.yaml"
        config.write_text(json.dumps({
            "jobs_dir": str(self.jobs_dir), "state_dir": str(root / "state"),
            "scratch_dir": str(root / "scratch"), "known_hosts": str(self.sshd.known_hosts),
            "concurrency": concurrency, "database_url": self.postgres.url,
            "orchestrator": name}, indent=2) + "\n")
        return config

    def stop(self) -> None:
        self.sshd.stop()
        self.postgres.stop()


# -- one round: N orchestrators at the same moment ----------------------------------------

@dataclass
class Orchestrator:
    name: str
    config: Path
    due: bool = True
    core: int | None = None  # --pin: this orchestrator (and its children) on one core
    cpus: float | None = None  # --cpus: its own CPU quota (a cgroup), children included
    group: Path | None = None  # that cgroup, made by start()
    proc: subprocess.Popen[str] | None = None
    out: str = ""
    err: str = ""
    seconds: float = 0.0

    def argv(self) -> list[str]:
        due = ["--due"] if self.due else []
        pin = ["taskset", "-c", str(self.core)] if self.core is not None else []
        return [*pin, *BACKUPCTL, "-c", str(self.config), "backup", "--all", *due, "--json"]

    def start(self) -> None:
        # Under systemd the operator is `scheduler`; INVOCATION_ID makes a shell run the same.
        group = self.group = (cpu_group(f"backupctl-bench-{self.name}", self.cpus)
                              if self.cpus else None)
        self.proc = subprocess.Popen(
            self.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "INVOCATION_ID": "bench"},
            preexec_fn=(lambda: (group / "cgroup.procs").write_text(str(os.getpid())))
            if group else None)

    def wait(self, started: float) -> None:
        assert self.proc is not None
        self.out, self.err = self.proc.communicate()
        self.seconds = time.monotonic() - started

    def kill(self) -> None:
        """Stop it if it still runs, and remove its cgroup (empty once its processes end)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.group is not None:
            with contextlib.suppress(OSError):
                self.group.rmdir()

    def job_statuses(self) -> Counter[str]:
        """How this orchestrator's --json output describes each job: ran (its exit status)
        or skipped (not_due, running_elsewhere)."""
        try:
            payload = json.loads(self.out)
        except ValueError:
            return Counter()
        return Counter(str(job.get("skipped") or job.get("status", "?"))
                       for job in payload.get("jobs", []))


def cpu_group(name: str, cpus: float) -> Path:
    """A cgroup whose processes (and their children) get at most `cpus` CPUs: one machine
    of that size, as far as one machine can play several (cgroup v2 `cpu.max`, or v1's
    CFS quota)."""
    period = 100_000
    quota = max(1000, round(cpus * period))
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v2.exists():
        group = Path("/sys/fs/cgroup") / name
        group.mkdir(exist_ok=True)
        (group / "cpu.max").write_text(f"{quota} {period}")
        return group
    group = Path("/sys/fs/cgroup/cpu") / name
    group.mkdir(exist_ok=True)
    (group / "cpu.cfs_period_us").write_text(str(period))
    (group / "cpu.cfs_quota_us").write_text(str(quota))
    return group


@dataclass
class Round:
    orchestrators: int
    wall: float
    ran_by: dict[str, int]  # successful runs recorded per orchestrator
    statuses: dict[str, Counter[str]]
    problems: list[str]


def one_round(site: Site, count: int, *, concurrency: int, due: bool = True,
              pin: bool = False, cpus: float | None = None,
              night_before: bool = False) -> Round:
    """With `pin`, orchestrator i runs on core i; with `cpus`, each orchestrator in a cgroup
    of its own with that CPU quota (its restic and hooks too; sshd, the source side and
    PostgreSQL stay outside): separate machines, as far as one can show. With
    `night_before`, an untimed round first backs up every job, its runs are then dated a
    day back (so every job is due again), and the timed round is the next night's."""
    site.postgres.empty()
    cores = os.cpu_count() or 1

    def members() -> list[Orchestrator]:
        return [Orchestrator(f"backup{i + 1:02d}",
                             site.orchestrator_config(f"backup{i + 1:02d}",
                                                      concurrency=concurrency), due=due,
                             core=i % cores if pin else None, cpus=cpus)
                for i in range(count)]

    if night_before:
        _launch(members())
        site.postgres.query(
            "UPDATE runs SET started_at = to_char((started_at::timestamptz - interval '1 day')"
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), finished_at = "
            "to_char((finished_at::timestamptz - interval '1 day') AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') RETURNING id")
    since = datetime.now(UTC).isoformat(timespec="microseconds")
    timed = members()
    wall = _launch(timed)
    return Round(count, wall, _ran_by(site, since), {m.name: m.job_statuses() for m in timed},
                 _check(site, timed, since))


def _launch(members: list[Orchestrator]) -> float:
    """Start them at the same moment; the wall time until the last exits."""
    started = time.monotonic()
    try:
        for member in members:
            member.start()
        for member in members:
            member.wait(started)
    finally:
        for member in members:
            member.kill()
    return max(m.seconds for m in members)


def _ran_by(site: Site, since: str) -> dict[str, int]:
    rows = site.postgres.query("SELECT orchestrator, count(*) FROM runs WHERE kind = 'backup' "
                               f"AND status = 'success' AND started_at >= '{since}' "
                               "GROUP BY orchestrator ORDER BY 1")
    return {str(o): int(str(n)) for o, n in rows}


def _check(site: Site, members: list[Orchestrator], since: str) -> list[str]:
    """Exactly once since the timed round started: one success run and one evidence record
    per job, nothing else."""
    problems = []
    per_job = {str(job): int(str(n)) for job, n in site.postgres.query(
        "SELECT job, count(*) FROM runs WHERE kind = 'backup' AND status = 'success' "
        f"AND started_at >= '{since}' GROUP BY job")}
    for name in site.names():
        if per_job.get(name) != 1:
            problems.append(f"{name}: {per_job.get(name, 0)} successful backups (want 1)")
    others = site.postgres.query("SELECT job, status, orchestrator, error FROM runs "
                                 "WHERE kind = 'backup' AND status <> 'success'")
    problems += [f"{job}: {status} on {orch}: {error}" for job, status, orch, error in others]
    evidence = site.postgres.query("SELECT count(*) FROM evidence e JOIN runs r ON "
                                   "r.id = e.run_id WHERE e.kind = 'backup' AND "
                                   f"r.started_at >= '{since}'")
    if int(str(evidence[0][0])) != site.jobs:
        problems.append(f"{evidence[0][0]} backup evidence records (want {site.jobs})")
    for member in members:
        assert member.proc is not None
        if member.proc.returncode not in (0,):
            problems.append(f"{member.name} exited {member.proc.returncode}: "
                            f"{member.err.strip()[-500:]}")
    return problems


# -- report -------------------------------------------------------------------------------

def report(site: Site, rounds: list[Round], *, concurrency: int) -> str:
    base = next((r.wall for r in rounds if r.orchestrators == 1), None)
    lines = [f"{site.jobs} jobs over SSH, `before: sleep {site.sleep:g}`, concurrency "
             f"{concurrency} per orchestrator, one PostgreSQL 15, {os.cpu_count()} cores", "",
             "| orchestrators | wall time | ratio to 1 | ideal | per-job overhead | "
             "backups per orchestrator | problems |",
             "|---|---|---|---|---|---|---|"]
    for r in rounds:
        overhead = (r.wall * r.orchestrators * concurrency - site.jobs * site.sleep) / site.jobs
        ratio = f"{r.wall / base:.2f}×" if base else "–"
        spread = ", ".join(f"{o}: {n}" for o, n in r.ran_by.items())
        lines.append(f"| {r.orchestrators} | {r.wall:.1f} s | {ratio} | "
                     f"{1 / r.orchestrators:.2f}× | {overhead:.2f} s | {spread} | "
                     f"{len(r.problems) or 'none'} |")
    lines += ["", "Job outcomes as each orchestrator reported them (`--json`):", ""]
    for r in rounds:
        for name, statuses in r.statuses.items():
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
            lines.append(f"- {r.orchestrators} orchestrator(s), {name}: {shown or 'no output'}")
    problems = [f"- {r.orchestrators} orchestrator(s): {p}" for r in rounds for p in r.problems]
    if problems:
        lines += ["", "Problems (each job must be backed up exactly once):", "", *problems]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def workdir(given: Path | None, *, keep: bool) -> Iterator[Path]:
    path = given or Path(tempfile.mkdtemp(prefix="backupctl-fleet-"))
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)  # the postgres user must reach its cluster below it
    try:
        yield path
    finally:
        if keep:
            sys.stderr.write(f"work directory kept: {path}\n")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--sleep", type=float, default=2.0)
    parser.add_argument("--orchestrators", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--pin", action="store_true",
                        help="hold orchestrator i to core i (taskset): the scaling of separate "
                        "machines, up to the number of cores")
    parser.add_argument("--cpus", type=float, default=None,
                        help="give each orchestrator (and the processes it starts) a CPU "
                        "quota of its own (a cgroup): N orchestrators of that size against "
                        "one, as separate machines would be; root")
    parser.add_argument("--servers-cpus", type=float, default=None,
                        help="hold the servers' side (sshd and every session: restic backup, "
                        "hooks, hashing helpers) to this many CPUs in every round, so that "
                        "rounds differ only in their orchestrators; root")
    parser.add_argument("--night-before", action="store_true",
                        help="time the second night: an untimed round backs up every job "
                        "first (the kept listings of unchanged data are then used)")
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--no-due", action="store_true",
                        help="run `backup --all` without --due: one orchestrator without the "
                        "due check (several would each back up every job)")
    args = parser.parse_args()
    if args.no_due and args.orchestrators != [1]:
        sys.exit("--no-due only makes sense with --orchestrators 1")
    if os.geteuid() != 0:
        sys.exit("run as root (initdb through runuser, sshd on loopback)")

    with workdir(args.workdir, keep=args.keep or args.setup_only) as work:
        site = Site(work / "site", jobs=args.jobs, sleep=args.sleep,
                    servers_cpus=args.servers_cpus)
        try:
            site.build()
            if args.setup_only:
                for i in range(max(args.orchestrators)):
                    name = f"backup{i + 1:02d}"
                    config = site.orchestrator_config(name, concurrency=args.concurrency)
                    result = subprocess.run([*BACKUPCTL, "-c", str(config), "validate"],
                                            capture_output=True, text=True, check=False)
                    print(f"{name}: validate exited {result.returncode} "
                          f"{result.stderr.strip()[-300:]}")
                    print("  would run: " + " ".join(Orchestrator(name, config).argv()))
                return
            rounds = [one_round(site, n, concurrency=args.concurrency, due=not args.no_due,
                                pin=args.pin, cpus=args.cpus, night_before=args.night_before)
                      for n in args.orchestrators]
        finally:
            site.stop()
    print(report(site, rounds, concurrency=args.concurrency))


if __name__ == "__main__":
    main()
