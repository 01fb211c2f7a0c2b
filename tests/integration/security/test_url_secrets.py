"""A password inside a repository URL is a secret like any other (issue #13): never in a
process's argv or environment, an output, the state, the textfile, a report, the runbook,
a dry-run plan, JSON, or an exported bundle, whether the run succeeds or fails."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from datetime import date

from tests.conftest import PASSWORD, RestServer, Sshd, Workspace
from tests.leaks import LeakWatch

YEAR_START, YEAR_END = f"{date.today().year}-01-01", f"{date.today().year}-12-31"


def _all(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def test_a_password_in_a_repository_url_leaks_nowhere(
        ssh_workspace: Workspace, sshd: Sshd, rest_server: Callable[..., RestServer]) -> None:
    ws = ssh_workspace
    url_pw, copy_pw = f"urlpw-{secrets.token_hex(8)}", f"copypw-{secrets.token_hex(8)}"
    primary = rest_server(ws.new_repo("sec-primary"), append_only=False, user="backup",
                          password=url_pw)
    worm = rest_server(ws.new_repo("sec-worm"), user="vault", password=copy_pw)
    (ws.root / "metrics").mkdir()
    ws.write_config(textfile_dir=str(ws.root / "metrics"))
    src = ws.root / "src" / "sec"
    src.mkdir(parents=True)
    (src / "カルテ.txt").write_text("患者データ\n" * 50)
    (src / "scan.pdf").write_bytes(secrets.token_bytes(200_000))
    ws.job("sec", sshd=sshd, source=src, repository={"url": primary.url},
           copies=[{"name": "worm", "kind": "immutable", "url": worm.url,
                    "password_file": str(ws.password_file()), "max_age": "2d"}],
           verify={"sample": "all"})
    watch = LeakWatch(url_pw.encode(), interval=0.003)
    outputs: list[subprocess.CompletedProcess[str]] = []
    watch.start()
    try:
        for args in (["backup", "sec", "--json"], ["verify", "sec", "--json"],
                     ["verify", "sec", "--mode", "full", "--json"], ["copy", "sec", "--json"],
                     ["backup", "sec", "--dry-run"], ["verify", "sec", "--dry-run", "--json"],
                     ["copy", "sec", "--dry-run"], ["status", "--json"],
                     ["runbook", "sec"], ["runbook", "sec", "--format", "html"],
                     ["report", "--from", YEAR_START, "--to", YEAR_END, "--format",
                      "json"], ["report", "--from", YEAR_START, "--to", YEAR_END,
                                "--format", "csv"]):
            outputs.append(ws.run(*args))
        for fmt in ("html", "pdf"):
            outputs.append(ws.run("report", "--from", YEAR_START, "--to", YEAR_END,
                                  "--format", fmt, "-o", str(ws.root / f"report.{fmt}")))
        bundle_pw = ws.password_file("bundle", "bundle-password-123")
        outputs.append(ws.run("evidence", "export", "--from", YEAR_START, "--to",
                              YEAR_END, "-o", str(ws.root / "bundle.zip"),
                              "--password-file", str(bundle_pw)))
        primary.stop()  # now every run fails, with the URL in restic's errors
        outputs += [ws.run("backup", "sec", "--json"), ws.run("verify", "sec", "--json"),
                    ws.run("verify", "sec", "--mode", "full", "--json")]
    finally:
        watch.stop()

    codes = [p.returncode for p in outputs]
    assert codes[:4] == [0, 0, 0, 0], [_all(p)[-2000:] for p in outputs[:4]]
    assert codes[-3:] == [1, 1, 1], "the server is down: could not complete"
    assert any("***" in _all(p) for p in outputs), "the URL is shown masked"
    extracted = ws.root / "bundle"
    subprocess.run(["7z", "x", "-y", f"-o{extracted}", str(ws.root / "bundle.zip")],
                   input="bundle-password-123\n", text=True, capture_output=True, check=True)
    assert (extracted / "records.jsonl").stat().st_size > 0
    for secret in (url_pw, copy_pw, PASSWORD):
        found = [i for i, p in enumerate(outputs) if secret in _all(p)]
        assert found == [], f"{secret[:6]}… in the output of commands {found}"
    for root in (ws.state_dir, ws.root / "metrics", ws.scratch_dir, extracted,
                 ws.root / "report.html", ws.root / "report.pdf"):
        for path in ([root] if root.is_file() else root.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                for secret in (url_pw, copy_pw):
                    assert secret.encode() not in data, f"{secret[:6]}… in {path}"
    # restic ran over SSH with the URL on a pipe: the launcher, never argv/env
    assert watch.sweeps > 20 and watch.hits == [], watch.hits
    assert any("--repository-file" in argv for argv in watch.restic_argvs)
