"""Benchmark: database dumps and full database restore tests against the plain pipelines.

Builds a PostgreSQL source database with `pgbench -i -s SCALE` (scale 65 ≈ 1 GB on disk,
≈ 6.5 million rows; plus a table with Japanese text), then times, alternating the
contenders and keeping the best of `--repeat` runs:

  backup: plain `pg_dump -Fc DSN | restic backup --stdin` (bash, pipefail)
          vs `backupctl.databases.dump_database` (the host helper: snapshot export, exact
          row count of every table, pg_dump --snapshot, SHA-256 on the way, restic)
  prove : plain `createdb` + `restic dump SNAP /bench/emr.pgdump | pg_restore -d DB` into a
          running server vs `backupctl.databases.prove_full` (initdb + start of a throwaway
          server, restic dump to scratch, pg_restore --jobs 2, every table counted and
          compared, stop and wipe)

and the peak RSS of the backupctl contenders (the measured process, and the largest of its
children: the helper, restic, pg_dump …).

    .venv/bin/python bench/databases.py [--scale 65] [--repeat 3] [--workdir DIR] [--keep]

Prints a Markdown report on stdout. `--scale 1` proves the script works in about a minute;
the real measurement (scale 65) belongs on a quiet machine. Deletes its work directory
unless --keep. Runs as root (the servers then run as `postgres`) or as a normal user.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from backupctl.databases.cluster import find_pg_bin
from backupctl.execute.local import LocalRunner
from bench.verify import Run, measure, settle

PASSWORD = "bench-password-not-secret"
JOB = "bench"
# The newest installed PostgreSQL, as backupctl's restore tests pick it (no version in code).
PG_BIN = find_pg_bin(LocalRunner()).path

# The backupctl contenders run in their own process (so their RSS and time are their own).
DRIVER = """
import json, sys
from pathlib import Path
from backupctl.config.schema import Database
from backupctl.databases import DumpManifest, dump_database, prove_full
from backupctl.execute import Secret
from backupctl.execute.local import LocalRunner
from backupctl.state.database_proof import schema_from_json, schema_to_json

task = json.loads(Path(sys.argv[1]).read_text())
password = Secret(task["password"])
if task["what"] == "dump":
    database = Database(name="emr", kind="postgresql", dsn=task["dsn"])
    result = dump_database(LocalRunner(), database, job=task["job"], repo_url=task["repo"],
                           password=password, timeout=6 * 3600)
    if result.error:
        sys.exit(result.error)
    Path(sys.argv[2]).write_text(json.dumps({**vars(result.manifest()),
                                             "schema": schema_to_json(result.schema)}))
else:
    manifest = DumpManifest(**{**task["manifest"],
                              "schema": schema_from_json(task["manifest"]["schema"])})
    findings = prove_full(LocalRunner(), manifest, checks=[],
                          repo_url=task["repo"], password=password,
                          scratch_dir=Path(task["scratch"]), timeout=6 * 3600)
    if not findings.proven:
        sys.exit(f"not proven: {findings.to_json()}")
    Path(sys.argv[2]).write_text(json.dumps(findings.to_json()))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_pg() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Server:
    """A PostgreSQL server in the work directory (the source, or the plain restore target)."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        root.mkdir(parents=True)
        root.chmod(0o700)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
        subprocess.run([*as_pg(), str(PG_BIN / "initdb"), "-D", str(root / "data"), "-A",
                        "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"],
                       check=True, capture_output=True)
        subprocess.run([*as_pg(), str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-w", "-s",
                        "-l", str(root / "log"), "-o",
                        f"-c listen_addresses='' -p {self.port} -k {root} -c fsync=off",
                        "start"], check=True)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.root} port={self.port} user=postgres dbname={dbname}"

    def client(self) -> list[str]:
        return ["-h", str(self.root), "-p", str(self.port), "-U", "postgres"]

    def psql(self, sql: str, dbname: str = "postgres") -> None:
        subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                        self.dsn(dbname), "-c", sql], check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run([*as_pg(), str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m",
                        "immediate", "-w", "-s", "stop"], check=False)


class Bench:
    def __init__(self, work: Path, scale: int) -> None:
        self.work, self.scale = work, scale
        self.repo, self.pw = work / "repo", work / "pw"
        self.scratch = work / "scratch"
        self.rows: list[str] = []
        self.servers: list[Server] = []
        self.last_manifest: dict[str, Any] | None = None

    def setup(self) -> None:
        self.work.chmod(0o711)  # the servers (user postgres) live below it
        self.pw.write_text(PASSWORD + "\n")
        self.pw.chmod(0o600)
        self.scratch.mkdir(mode=0o711)
        self.scratch.chmod(0o711)
        subprocess.run(["restic", "init", "-q", "--repo", str(self.repo), "--password-file",
                        str(self.pw)], check=True)
        self.source = self.server("source")
        self.target = self.server("target")
        self.source.psql("CREATE DATABASE emr TEMPLATE template0 ENCODING 'UTF8'")
        started = time.monotonic()
        subprocess.run([str(PG_BIN / "pgbench"), *self.source.client(), "-i", "-q", "-s",
                        str(self.scale), "emr"], check=True, capture_output=True)
        self.source.psql("CREATE TABLE 患者 (id int PRIMARY KEY, 名前 text); INSERT INTO 患者 "
                         "SELECT i, '山田太郎' || i FROM generate_series(1, 10000) i", "emr")
        self.rows.append(f"| setup | `pgbench -i -s {self.scale}` | "
                         f"{time.monotonic() - started:.1f} s | | |")

    def server(self, name: str) -> Server:
        server = Server(self.work / name)
        self.servers.append(server)
        return server

    def restic(self, *args: str) -> list[str]:
        return ["restic", "--repo", str(self.repo), "--password-file", str(self.pw), *args]

    def plain_backup(self) -> Run:
        script = ('set -o pipefail; "$1" -Fc "$2" | restic --repo "$3" --password-file "$4" '
                  "backup --stdin --stdin-filename bench.plain.pgdump --host plain -q")
        return measure(["bash", "-c", script, "bash", str(PG_BIN / "pg_dump"),
                        self.source.dsn("emr"), str(self.repo), str(self.pw)])

    def driver(self, task: dict[str, object]) -> tuple[Run, str]:
        # The bench password is not a secret: the task goes in a file for simplicity.
        path = self.work / "task.json"
        path.write_text(json.dumps({**task, "password": PASSWORD, "repo": str(self.repo)}))
        out = self.work / "out.json"
        out.unlink(missing_ok=True)
        run = measure([sys.executable, "-c", DRIVER, str(path), str(out)])
        return run, out.read_text() if out.exists() else "{}"

    def backupctl_backup(self) -> Run:
        run, out = self.driver({"what": "dump", "dsn": self.source.dsn("emr"), "job": JOB})
        if run.returncode == 0:
            self.last_manifest = json.loads(out)
        return run

    def plain_prove(self) -> float:
        self.target.psql("DROP DATABASE IF EXISTS plain")
        started = time.monotonic()
        self.target.psql("CREATE DATABASE plain TEMPLATE template0 ENCODING 'UTF8'")
        script = ('set -o pipefail; restic --repo "$1" --password-file "$2" --no-cache dump '
                  'latest /bench.plain.pgdump --host plain | "$3" -h "$4" -p "$5" -U postgres '
                  "-d plain --no-owner --no-privileges")
        subprocess.run(["bash", "-c", script, "bash", str(self.repo), str(self.pw),
                        str(PG_BIN / "pg_restore"), str(self.target.root),
                        str(self.target.port)], check=True)
        return time.monotonic() - started

    def backupctl_prove(self) -> tuple[Run, dict[str, Any]]:
        run, out = self.driver({"what": "prove", "manifest": self.last_manifest,
                                "scratch": str(self.scratch)})
        return run, (json.loads(out) if run.returncode == 0 else {})

    def run(self, repeat: int) -> None:
        label = f"scale {self.scale}"
        plain_b: list[Run] = []
        ours_b: list[Run] = []
        for _ in range(repeat):
            settle()
            plain_b.append(self.plain_backup())
            settle()
            ours_b.append(self.backupctl_backup())
        for runs in (plain_b, ours_b):
            if any(r.returncode != 0 for r in runs):
                raise SystemExit("a backup failed")
        size = int(self.last_manifest["size"]) if self.last_manifest else 0
        tables = self.last_manifest["tables"] if self.last_manifest else {}
        rows = sum(tables.values()) if isinstance(tables, dict) else 0
        self.rows.append(f"| {label} | dump: {size / (1 << 20):.1f} MiB, {rows} rows | | | |")
        self.row(label, "plain `pg_dump -Fc \\| restic backup --stdin`", min(plain_b, key=_s))
        self.row(label, "`dump_database` (counts every table, SHA-256)", min(ours_b, key=_s))
        self.ratio(label, "backup", min(ours_b, key=_s).seconds, min(plain_b, key=_s).seconds)
        plain_p: list[float] = []
        ours_p: list[tuple[Run, dict[str, Any]]] = []
        for _ in range(repeat):
            settle()
            plain_p.append(self.plain_prove())
            settle()
            ours_p.append(self.backupctl_prove())
        if any(r.returncode != 0 for r, _ in ours_p):
            raise SystemExit("a full prove failed")
        best, findings = min(ours_p, key=lambda p: p[0].seconds)
        self.rows.append(f"| {label} | plain `createdb` + `restic dump \\| pg_restore` | "
                         f"{min(plain_p):.1f} s | | |")
        self.row(label, "`prove_full` (initdb, restore --jobs 2, count, wipe)", best)
        self.rows.append(f"| {label} | → of which restic dump + pg_restore (`restore_ms`) | "
                         f"{int(findings['restore_ms']) / 1000:.1f} s | | |"
                         if findings.get("restore_ms") is not None else "")
        self.rows.append(f"| {label} | → steps (ms) | {findings.get('timings_ms')} | | |")
        self.ratio(label, "full prove", best.seconds, min(plain_p))

    def row(self, label: str, what: str, run: Run) -> None:
        self.rows.append(f"| {label} | {what} | {run.seconds:.1f} s | "
                         f"{run.rss_self_kib / 1024:.0f} MiB | {run.rss_tree_kib / 1024:.0f} MiB |")

    def ratio(self, label: str, what: str, ours: float, plain: float) -> None:
        self.rows.append(f"| {label} | → {what} ratio backupctl / plain | "
                         f"**{ours / plain:.2f}×** | | |")

    def close(self) -> None:
        for server in self.servers:
            server.stop()


def _s(run: Run) -> float:
    return run.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=int, default=65, help="pgbench scale (65 ≈ 1 GB)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="alternating runs per contender (best kept)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="backupctl-dbbench-"))
    bench = Bench(work, args.scale)
    started = time.monotonic()
    try:
        bench.setup()
        bench.run(args.repeat)
    finally:
        bench.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run(["restic", "version"], capture_output=True, text=True).stdout
    print(f"restic: {version.strip()}; PostgreSQL {PG_BIN.parent.name}; cores: "
          f"{os.cpu_count()}; total bench time {time.monotonic() - started:.0f} s\n")
    print("| data | what | wall time | peak RSS (measured process) | peak RSS (largest "
          "child) |")
    print("|---|---|---|---|---|")
    print("\n".join(r for r in bench.rows if r))


if __name__ == "__main__":
    main()
