"""The orchestrator's repository served over the job's SSH connection (SPEC §15, §11):
real sshd, restic and rclone; the host is this machine reached through the test's sshd."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backupctl.actions import tunnel
from backupctl.errors import ConnectError
from backupctl.execute import Secret
from backupctl.execute.ssh import SshRunner
from backupctl.restic import commands as restic
from backupctl.restic import parse
from tests import restic_kdf
from tests.conftest import PASSWORD, TIMING, RestServer, Sshd, make_sshd
from tests.conftest import restic as local_restic
from tests.leaks import LeakWatch

# Runs on the host (python3 -I -c), the served URL on its stdin (never on its command line):
# each request of argv[1] with the tunnel's credential, and one without; prints the codes.
PROBE = r"""
import base64, json, sys, urllib.error, urllib.parse, urllib.request
url = urllib.parse.urlsplit(sys.stdin.read().strip().removeprefix("rest:"))
auth = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
base = f"http://127.0.0.1:{url.port}{url.path.rstrip('/')}"
def send(method, path, body, authorised=True):
    headers = {"Authorization": "Basic " + auth} if authorised else {}
    request = urllib.request.Request(base + path, data=body.encode() if body is not None
                                     else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
codes = {f"{m} {p}": send(m, p, b) for m, p, b in json.loads(sys.argv[1])}
codes["GET /config without the credential"] = send("GET", "/config", None, False)
print(json.dumps(codes))
"""


def token() -> str:
    """A credential unique to the test, so the leak watcher knows what to look for."""
    return f"tunnel-canary-{secrets.token_hex(16)}"


@pytest.fixture
def runner(sshd: Sshd) -> Iterator[SshRunner]:
    ssh = SshRunner(job="t", address="127.0.0.1", port=sshd.port, user="root",
                    identity_file=sshd.identity, known_hosts=sshd.known_hosts, **TIMING)
    yield ssh
    ssh.close()


@pytest.fixture
def repo(restic_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(restic_template, target)
    return target


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "カルテ.txt").write_text("患者データ\n")
    (src / "scan.bin").write_bytes(os.urandom(256 * 1024))
    return src


def _backup(runner: SshRunner, url: str, src: Path, *, password: str = PASSWORD) -> str:
    result = runner.run(restic.backup(url, Secret(password), host="t", paths=[str(src)],
                                      exclude=[]), timeout=300)
    assert result.ok, result.describe()
    summary = parse.backup_output(result.stdout, result.stderr).summary
    assert summary is not None
    return summary.snapshot_id


def _full_id(repo: Path, short: str) -> str:
    [found] = [p.name for p in (repo / "snapshots").iterdir() if p.name.startswith(short)]
    return found


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "locks" not in p.parts}


def _rclone_children() -> list[int]:
    """rclone processes this test process started (its own children, nothing else)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and b"rclone" in cmdline.split(b"\0", 1)[0]:
            found.append(int(stat.parent.name))
    return found


def _refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def test_the_host_backs_up_through_the_tunnel_and_cannot_delete_or_rewrite(
        runner: SshRunner, sshd: Sshd, tmp_path: Path, contained: Path) -> None:
    # Secrets unique to this test: other tests' files on this machine cannot match them.
    credential, password = token(), f"tunnel-password-{secrets.token_hex(16)}"
    repo = tmp_path / "unique-repo"
    subprocess.run(["restic", "init", "-q", "--repo", str(repo), "--password-file",
                    "/dev/stdin"], input=password.encode(), check=True, capture_output=True)
    restic_kdf.cheapen(repo, password)
    watch = LeakWatch(password.encode(), also=(credential.encode(),), interval=0.005)
    src = _source(tmp_path)
    watch.start()
    try:
        with tunnel.serve(runner, str(repo), job="t", token=lambda: credential) as served:
            assert credential not in served.shown
            snapshot = _full_id(repo, _backup(runner, served.url, src, password=password))
            before = _digests(repo)
            [key] = [p.name for p in (repo / "keys").iterdir()]
            [pack] = [p.relative_to(repo) for p in (repo / "data").rglob("*") if p.is_file()][:1]
            requests = [["GET", "/config", None],
                        ["DELETE", f"/snapshots/{snapshot}", None],
                        ["POST", f"/snapshots/{snapshot}", "rewritten"],
                        ["DELETE", f"/{pack.parts[0]}/{pack.name}", None],
                        ["DELETE", f"/keys/{key}", None], ["DELETE", "/config", None],
                        ["POST", "/config", "rewritten"]]
            probe = runner.run(["python3", "-I", "-c", PROBE, json.dumps(requests)],
                               stdin=served.url.encode(), timeout=120)
            assert probe.ok, probe.describe()
            codes = json.loads(probe.stdout)
            second = _backup(runner, served.url, src, password=password)  # adding works
    finally:
        watch.stop()

    assert codes.pop("GET /config") == 200  # the credential works: the refusals are real
    assert codes.pop("GET /config without the credential") == 401
    assert set(codes.values()) == {403}, codes
    after = _digests(repo)
    assert {k: after[k] for k in before} == before, "an object was deleted or rewritten"
    assert len(list((repo / "snapshots").iterdir())) == 2 and second
    watch.text("sshd log", sshd.log.read_text())
    assert watch.scan([tmp_path]) == []  # the sshd's sessions' temp and cache included
    assert watch.sweeps > 5


@pytest.mark.slow
def test_restic_forget_through_the_tunnel_is_refused(runner: SshRunner, repo: Path,
                                                     tmp_path: Path) -> None:
    """restic retries a refused delete for ~44 s (COMPONENTS.md) before it gives up."""
    src = _source(tmp_path)
    with tunnel.serve(runner, str(repo), job="t") as served:
        snapshot = _backup(runner, served.url, src)
        forget = runner.run([*restic.base(served.url, Secret(PASSWORD)), "forget", "--prune",
                             snapshot], timeout=600)

    assert not forget.ok, forget.stdout
    listed = json.loads(local_restic(repo, "snapshots", "--json").stdout)
    assert [s["short_id"] for s in listed] == [snapshot]
    assert local_restic(repo, "check").returncode == 0


def test_a_restore_on_the_host_reads_through_the_tunnel_and_writes_nothing(
        runner: SshRunner, repo: Path, tmp_path: Path) -> None:
    """The recovery's use (SPEC §11): restic on the target, `--no-lock`."""
    src = _source(tmp_path)
    local_restic(repo, "backup", "--host", "t", str(src))
    before = {p.relative_to(repo): p.stat().st_mtime_ns for p in repo.rglob("*")}
    target = tmp_path / "target"
    with tunnel.serve(runner, str(repo), job="t") as served:
        restored = runner.run([*restic.base(served.url, Secret(PASSWORD), cache=False),
                               "--no-lock", "restore", "latest", "--target", str(target)],
                              timeout=300)
    assert restored.ok, restored.describe()
    assert _digests(target / src.relative_to("/")) == _digests(src)
    assert {p.relative_to(repo): p.stat().st_mtime_ns for p in repo.rglob("*")} == before


def test_the_end_of_the_block_stops_rclone_and_closes_the_forward(
        runner: SshRunner, repo: Path) -> None:
    with tunnel.serve(runner, str(repo), job="t") as served:
        servers = _rclone_children()
        assert len(servers) == 1
        with socket.create_connection(("127.0.0.1", served.port), timeout=10):
            pass  # the host's end is open while the block runs
    assert _rclone_children() == []
    assert _refuses(served.port)


def test_an_error_in_the_block_closes_the_tunnel_too(runner: SshRunner, repo: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), \
            tunnel.serve(runner, str(repo), job="t") as served:
        raise RuntimeError("boom")
    assert _rclone_children() == []
    assert _refuses(served.port)


def test_a_rest_server_on_the_orchestrators_loopback_is_forwarded_with_its_credential(
        runner: SshRunner, repo: Path, tmp_path: Path,
        rest_server: Callable[..., RestServer]) -> None:
    server = rest_server(repo, user="u", password=f"rest-pw-{secrets.token_hex(8)}")
    with tunnel.serve(runner, server.url, job="t") as served:
        assert served.url == f"rest:http://u:{server.password}@127.0.0.1:{served.port}/"
        assert served.port != server.port
        snapshot = _backup(runner, served.url, _source(tmp_path))
    assert _rclone_children() == [server.proc.pid]  # none of ours: the admin's serves
    listed = json.loads(local_restic(repo, "snapshots", "--json").stdout)
    assert [s["short_id"] for s in listed] == [snapshot]


def test_a_host_that_forbids_forwarding_is_a_clear_error(tmp_path: Path, repo: Path) -> None:
    server = make_sshd(tmp_path / "noforward")
    server.config.write_text(server.config.read_text() + "AllowTcpForwarding no\n")
    server.start()
    server.trust()
    ssh = SshRunner(job="t", address="127.0.0.1", port=server.port, user="root",
                    identity_file=server.identity, known_hosts=server.known_hosts, **TIMING)
    try:
        with pytest.raises(ConnectError, match="AllowTcpForwarding") as raised, \
                tunnel.serve(ssh, str(repo), job="t"):
            pytest.fail("the tunnel opened")
        assert raised.value.reason == "config"
        deadline = time.monotonic() + 30
        while _rclone_children() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _rclone_children() == []  # the server started first is stopped again
    finally:
        ssh.close()
        server.stop()


@pytest.mark.parametrize("options", ['restrict,port-forwarding,permitlisten="127.0.0.1:*"',
                                     'restrict,permitlisten="127.0.0.1:*"'])
def test_a_restricted_key_opens_the_tunnel_only_with_port_forwarding(
        tmp_path: Path, repo: Path, options: str) -> None:
    """install.md's `restrict` line opens the tunnel; `restrict` with `permitlisten` alone is
    refused by sshd, and the refusal names the `port-forwarding` it lacks (issue 29 walk)."""
    server = make_sshd(tmp_path / "restricted")
    authorized = server.root / "authorized_keys"
    authorized.write_text(f"{options} {authorized.read_text()}")
    server.start()
    server.trust()
    ssh = SshRunner(job="t", address="127.0.0.1", port=server.port, user="root",
                    identity_file=server.identity, known_hosts=server.known_hosts, **TIMING)
    try:
        if "port-forwarding," in options:
            with tunnel.serve(ssh, str(repo), job="t") as served:
                assert served.url.startswith("rest:http://")
        else:
            with pytest.raises(ConnectError, match="port-forwarding"), \
                    tunnel.serve(ssh, str(repo), job="t"):
                pytest.fail("the tunnel opened")
    finally:
        ssh.close()
        server.stop()
