"""The repository password never shows in any process's argv or environment, nor in a file
or a result, while databases are dumped (locally and over SSH) and proven (SPEC §7)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from backupctl.config.schema import Database
from backupctl.databases import dump_database, prove_full, prove_quick
from backupctl.execute import Runner, Secret
from backupctl.execute.local import LocalRunner
from backupctl.execute.ssh import SshRunner
from tests import restic_kdf
from tests.conftest import RestServer, Sshd, Workspace, need
from tests.integration.databases.conftest import JOB, SourceDb, make_sqlite
from tests.leaks import LeakWatch

# Unique to this test, so no other test session's processes can look like a leak of ours.
SECRET = f"db-canary-{secrets.token_hex(12)}"


@pytest.fixture
def secret_repo(tmp_path: Path) -> Path:
    need("restic")
    pw = tmp_path / "pw"
    pw.write_text(SECRET + "\n")
    repo = tmp_path / "secret-repo"
    subprocess.run(["restic", "init", "-q", "--repo", str(repo), "--password-file", str(pw)],
                   check=True, capture_output=True)
    pw.unlink()
    restic_kdf.cheapen(repo, SECRET)
    return repo


def test_the_password_is_never_in_argv_environment_or_files_during_dumps_and_proofs(
        source_db: SourceDb, secret_repo: Path, ssh_runner: SshRunner, scratch: Path,
        tmp_path: Path, contained: Path) -> None:
    password = Secret(SECRET)
    lab_path = tmp_path / "lab.sqlite3"
    make_sqlite(lab_path, rows=50)
    lab = Database(name="lab", kind="sqlite", dsn=str(lab_path))
    watch = LeakWatch(SECRET.encode(), interval=0.002)
    watch.start()
    try:
        jobs: list[tuple[Runner, Database]] = [(LocalRunner(), source_db.database()),
                                               (ssh_runner, source_db.database(name="emr2")),
                                               (ssh_runner, lab)]
        results = [dump_database(runner, database, job=JOB, repo_url=str(secret_repo),
                                 password=password, timeout=300) for runner, database in jobs]
        proofs = [prove(LocalRunner(), r.manifest(), repo_url=str(secret_repo),
                        password=password, timeout=300) for r in results
                  for prove in (prove_quick,)]
        proofs += [prove_full(LocalRunner(), r.manifest(), checks=[], repo_url=str(secret_repo),
                              password=password, scratch_dir=scratch, timeout=300)
                   for r in results]
    finally:
        watch.stop()

    assert [r.error for r in results] == [None, None, None]
    assert all(p.proven for p in proofs), proofs
    for value in [*(r.to_dict() for r in results), *(p.to_json() for p in proofs)]:
        watch.text("a result", json.dumps(value, ensure_ascii=False))
    hits = watch.scan([contained, Path("/var/tmp"), Path("/dev/shm"), scratch])
    assert watch.sweeps > 0
    assert hits == [], "repository password leaked:\n" + "\n".join(hits)
    # The watcher saw restic run, reading its password from a pipe, not from stdin.
    password_files = [argv[argv.index("--password-file") + 1] for argv in watch.restic_argvs
                      if "--password-file" in argv and str(secret_repo) in argv]
    assert password_files, "no restic process was sampled: the test proved nothing"
    assert all(p.startswith("/dev/fd/") for p in password_files), password_files


def test_a_password_in_the_repository_url_never_reaches_the_source_hosts_argv_logs_or_state(
        ssh_workspace: Workspace, sshd: Sshd, source_db: SourceDb, scratch: Path,
        secret_repo: Path, rest_server: Callable[..., RestServer], contained: Path) -> None:
    """A `rest:http://user:PASSWORD@…` repository: the database helper on the source host
    hands it to restic through a pipe (`--repository-file /dev/fd/N`), never argv."""
    ws = ssh_workspace
    url_pw = f"db-urlpw-{secrets.token_hex(10)}"
    server = rest_server(secret_repo, append_only=False, user="backup", password=url_pw)
    password_file = ws.password_file("unique", SECRET)
    ws.write_config(scratch_dir=str(scratch))
    src = ws.root / "src" / JOB
    src.mkdir(parents=True)
    (src / "カルテ.txt").write_text("患者データ\n")
    ws.job(JOB, sshd=sshd, source=src,
           repository={"url": server.url, "password_file": str(password_file)},
           databases=[{"name": "emr", "kind": "postgresql", "dsn": source_db.dsn}])
    watch = LeakWatch(url_pw.encode(), also=(SECRET.encode(),), interval=0.002,
                      allowed={password_file})
    watch.start()
    try:
        outputs = [ws.run("-v", "backup", JOB, "--json"),
                   ws.run("-v", "verify", JOB, "--json")]
    finally:
        watch.stop()

    assert [p.returncode for p in outputs] == [0, 0], [p.stderr[-2000:] for p in outputs]
    [dumped] = json.loads(outputs[0].stdout)["jobs"][0]["databases"]
    assert dumped["error"] is None and dumped["snapshot_id"], dumped
    # The watcher saw the helper's restic on the source host (under this test's sshd) and
    # the quick proof's on the orchestrator (under this test), each with the URL on a pipe.
    assert sshd.proc is not None
    on_host = watch.restic_argvs_under(sshd.proc.pid)
    local = watch.restic_argvs_under(os.getpid())
    helpers = [argv for argv in on_host if "--stdin-filename" in argv] + [
        argv for argv in local if "dump" in argv]
    # (a short `restic dump` may slip between two sweeps; the streaming backup cannot)
    assert "backup" in {w for argv in helpers for w in argv}, (on_host, local)
    for argv in helpers:
        assert "--repo" not in argv and "-r" not in argv, argv
        assert argv[argv.index("--repository-file") + 1].startswith("/dev/fd/"), argv
    for i, proc in enumerate(outputs):
        watch.text(f"output of command {i}", proc.stdout + proc.stderr)
    watch.text("sshd log", sshd.log.read_text())
    hits = watch.scan([ws.state_dir, ws.scratch_dir, scratch, sshd.root, contained])
    assert watch.sweeps > 20
    assert hits == [], "a password leaked:\n" + "\n".join(hits)
