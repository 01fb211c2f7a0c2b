"""The evidence chain in a shared PostgreSQL (issue 24 B): forged with psql like any database
writer would, and written by several orchestrators, each signing with its own key and
trusting the others' through `evidence_trusted_keys`; a key nobody trusts is exit 3."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import yaml_helpers
from tests.conftest import BACKUPCTL, Postgres, Workspace, need

from . import forge

BUNDLE_PASSWORD = "inspector-password-fleet"


def _psql(url: str, sql: str) -> None:
    done = subprocess.run([need("psql"), url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
                          text=True, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def _rows(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return list(cur.execute("SELECT * FROM evidence ORDER BY seq"))


@dataclass
class Orchestrator:
    """One orchestrator's config: its own name, state, scratch and evidence key."""

    name: str
    config: Path
    key: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*BACKUPCTL, "-c", str(self.config), *args], text=True,
                              capture_output=True, timeout=300, check=False)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"{self.name} {args}: {done.stdout}{done.stderr}"
        return done.stdout

    def verify(self) -> subprocess.CompletedProcess[str]:
        return self.run("evidence", "verify", "--db", "--json")

    @property
    def pub(self) -> Path:
        return self.key.with_name(self.key.name + ".pub")

    def fingerprint(self) -> str:
        return str(json.loads(self.ok("evidence", "init-key", "--json"))["fingerprint"])


def orchestrator(ws: Workspace, url: str, name: str, *, trusted: list[Path] | None = None
                 ) -> Orchestrator:
    home = ws.root / "orchestrators" / name
    home.mkdir(parents=True, exist_ok=True)
    ws.jobs_dir.mkdir(exist_ok=True)
    path = home / "backupctl.yaml"
    path.write_text(yaml_helpers.dump({
        "jobs_dir": str(ws.jobs_dir), "state_dir": str(home / "state"),
        "scratch_dir": str(home / "scratch"), "known_hosts": str(ws.known_hosts),
        "database_url": url, "orchestrator": name, "evidence_key": str(home / "evidence.key"),
        "evidence_trusted_keys": [str(p) for p in trusted or []]}))
    return Orchestrator(name, path, home / "evidence.key")


@pytest.fixture
def url(postgres: Postgres) -> str:
    return postgres.empty_url()


def _job(ws: Workspace, name: str) -> None:
    ws.job(name)
    (ws.root / "src" / name / "data.txt").write_text(f"{name} データ\n")


def test_a_chain_stripped_and_recomputed_with_psql_is_exit_3(workspace: Workspace,
                                                              url: str) -> None:
    ws = workspace
    a = orchestrator(ws, url, "orch-a")
    a.fingerprint()
    _job(ws, "emr")
    ws.job("broken", repo=ws.root / "repos" / "does-not-exist")
    a.ok("backup", "emr")
    assert a.run("backup", "broken").returncode == 1
    a.ok("backup", "emr")
    assert a.verify().returncode == 0
    rows = _rows(url)
    victim = next(i for i, r in enumerate(rows) if r["result"] == "fail")
    _psql(url, "\n".join(forge.postgres_update(u) for u in
                         forge.rewritten(rows, forge.strip, victim=victim))
          + "\nUPDATE runs SET status = 'success', exit_code = 0;")
    assert all(r["signature"] is None for r in _rows(url))
    done = a.verify()
    assert done.returncode == 3, done.stdout + done.stderr
    first = json.loads(done.stdout)["problems"][0]
    assert (first["seq"], first["what"]) == (rows[0]["seq"], "stripped")
    # The newest records deleted with psql (and their runs): the head pin tells.
    _psql(url, f"DELETE FROM evidence WHERE seq >= {rows[1]['seq']}; DELETE FROM runs "
               f"WHERE id IN ({', '.join(str(r['run_id']) for r in rows[1:])});")
    done = a.verify()
    assert done.returncode == 3
    assert "deleted" in {p["what"] for p in json.loads(done.stdout)["problems"]}


def test_orchestrators_with_their_own_keys_share_one_chain_and_a_stranger_is_exit_3(
        workspace: Workspace, url: str, tmp_path: Path) -> None:
    ws = workspace
    homes = ws.root / "orchestrators"
    pubs = {n: homes / n / "evidence.key.pub" for n in ("orch-a", "orch-b")}
    # The keys first (a trusted key file must exist), each orchestrator trusting only itself.
    a_alone = orchestrator(ws, url, "orch-a")
    b_alone = orchestrator(ws, url, "orch-b")
    fingerprints = {"orch-a": a_alone.fingerprint(), "orch-b": b_alone.fingerprint()}
    _job(ws, "emr")
    _job(ws, "pacs")
    a_alone.ok("backup", "emr")
    b_alone.ok("backup", "pacs")
    a_alone.ok("backup", "pacs")
    # What the review found: each reports the other's records as forged.
    done = a_alone.verify()
    assert done.returncode == 3
    problem = json.loads(done.stdout)["problems"][0]
    assert problem["what"] == "foreign-key" and fingerprints["orch-b"] in problem["message"]
    # With each other's public keys trusted, both verify the whole shared chain; each pin
    # speaks for the chain as its orchestrator last saw it.
    a, b = orchestrator(ws, url, "orch-a", trusted=[pubs["orch-b"]]), orchestrator(
        ws, url, "orch-b", trusted=[pubs["orch-a"]])
    for me in (a, b):
        done = me.verify()
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(done.stdout)
        assert result["signers"] == {fingerprints["orch-a"]: 2, fingerprints["orch-b"]: 1}
    rows = _rows(url)
    assert [r["key_fingerprint"] for r in rows] == [
        fingerprints["orch-a"], fingerprints["orch-b"], fingerprints["orch-a"]]
    assert json.loads(b.verify().stdout)["head_pin"]["seq"] == rows[1]["seq"]
    _bundle_with_both_keys(a, tmp_path, fingerprints)
    # A third orchestrator with a key nobody trusts writes into the shared chain.
    c = orchestrator(ws, url, "orch-c", trusted=[pubs["orch-a"], pubs["orch-b"]])
    c.fingerprint()
    c.ok("backup", "emr")
    for me in (a, b):
        done = me.verify()
        assert done.returncode == 3, done.stdout + done.stderr
        problem = json.loads(done.stdout)["problems"][0]
        assert (problem["seq"], problem["what"]) == (_rows(url)[-1]["seq"], "foreign-key")


def _bundle_with_both_keys(a: Orchestrator, tmp_path: Path,
                           fingerprints: dict[str, str]) -> None:
    """orch-a's bundle holds orch-b's key too; the inspector's script picks the right one."""
    password = tmp_path / "pw"
    password.write_text(BUNDLE_PASSWORD + "\n")
    bundle = tmp_path / "fleet.zip"
    a.ok("evidence", "export", "--from", "2020-01-01", "--to", date.today().isoformat(),
         "-o", str(bundle), "--password-file", str(password))
    a.ok("evidence", "verify", str(bundle), "--password-file", str(password))
    script = forge.inspect_bundle(bundle, BUNDLE_PASSWORD, tmp_path / "fleet")
    assert script.returncode == 0, script.stdout + script.stderr
    assert "3 signatures verified" in script.stdout
    for fingerprint in fingerprints.values():
        assert f"key fingerprint: {fingerprint}" in script.stdout
    # Without orch-b's key in the bundle its record is signed by a foreign key.
    trusted = next((tmp_path / "fleet").glob("trusted-*.pub"))
    trusted.unlink()
    sums = tmp_path / "fleet" / "SHA256SUMS"
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines()
                            if not line.endswith(trusted.name)))
    script = subprocess.run(["sh", "verify-records.sh"], cwd=tmp_path / "fleet", text=True,
                            capture_output=True, timeout=300, check=False)
    assert script.returncode == 3 and "foreign key" in script.stdout, script.stdout
