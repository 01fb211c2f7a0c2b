"""LocalRunner and SshRunner against real processes and a real sshd."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from backupctl.errors import ConnectError, HostKeyError, UsageError
from backupctl.execute import STDERR_KEEP, Runner, Secret, SecretFile
from backupctl.execute.local import LocalRunner
from backupctl.execute.ssh import SshRunner
from tests.conftest import TIMING, Sshd, free_port

NASTY = ["a b", "x;y$(touch /tmp/pwned-runner)", "it's", 'quo"te', "-rf", "スキャン", "", "\\"]


def _ssh(sshd: Sshd, **kw: object) -> SshRunner:
    return SshRunner(job="t", address="127.0.0.1", port=sshd.port, user="root",
                     identity_file=sshd.identity, known_hosts=sshd.known_hosts,
                     **{**TIMING, **kw})  # type: ignore[arg-type]


@pytest.fixture(params=["local", "ssh"])
def runner(request: pytest.FixtureRequest, sshd: Sshd) -> Runner:
    return LocalRunner() if request.param == "local" else _ssh(sshd)


def test_argv_reaches_the_process_unchanged(runner: Runner) -> None:
    result = runner.run(["printf", "%s\\0", *NASTY], timeout=30)
    assert result.ok, result.describe()
    assert result.stdout.split(b"\0")[:-1] == [a.encode() for a in NASTY]
    assert not Path("/tmp/pwned-runner").exists()
    runner.close()


def test_secret_file_is_readable_once_and_not_in_argv(runner: Runner) -> None:
    secret = Secret("runner-secret-3f9e")
    result = runner.run(["sh", "-c", 'cat "$1"; echo "$1"', "sh", SecretFile(secret)],
                        timeout=30)
    assert result.ok, result.describe()
    first, path = result.stdout.decode().splitlines()[:2]
    assert first == "runner-secret-3f9e"
    assert path.startswith("/dev/fd/") or path == "/dev/stdin"
    assert "runner-secret" not in result.argv
    runner.close()


def test_exit_code_and_stderr_tail(runner: Runner) -> None:
    """Every line reaches the result (restic's per-file errors are parsed from it); an error
    message shows the last 30."""
    result = runner.run(["sh", "-c", "for i in $(seq 100); do echo line$i >&2; done; exit 7"],
                        timeout=30)
    assert result.returncode == 7 and not result.ok
    assert result.stderr.splitlines() == [f"line{i}" for i in range(1, 101)]
    described = result.describe()
    assert "exited 7" in described
    assert "line71\n" in described and described.endswith("line100")
    assert "line70\n" not in described
    runner.close()


def test_a_flood_on_stderr_keeps_its_end_only(runner: Runner) -> None:
    result = runner.run(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x >&2; echo END >&2"],
                        timeout=60)
    assert result.ok
    assert len(result.stderr) == STDERR_KEEP and result.stderr.endswith("xEND\n")
    runner.close()


def test_timeout_stops_the_command(runner: Runner) -> None:
    started = time.monotonic()
    result = runner.run(["sleep", "30"], timeout=1)
    assert result.timed_out and not result.ok
    assert time.monotonic() - started < 15
    assert "timed out" in result.describe()
    runner.close()


def test_stderr_watch_stops_the_command_when_it_says_so(runner: Runner) -> None:
    """What restic 0.17+ retrying an unreachable repository needs: stopped on its words,
    not after its 15 minutes (restic.watch)."""
    seen: list[bytes] = []

    def watch(chunk: bytes) -> bool:
        seen.append(chunk)
        return b"retrying" in b"".join(seen)

    started = time.monotonic()
    result = runner.run(["sh", "-c", "echo starting >&2; sleep 1; echo retrying >&2; "
                         "exec sleep 60"], timeout=120, stderr_watch=watch)
    assert result.stopped and not result.ok and not result.timed_out
    assert time.monotonic() - started < 30
    assert "retrying" in result.stderr and "was stopped" in result.describe()
    heard: list[bytes] = []

    def listen(chunk: bytes) -> bool:
        heard.append(chunk)
        return False

    quiet = runner.run(["sh", "-c", "echo fine >&2"], timeout=30, stderr_watch=listen)
    assert quiet.ok and not quiet.stopped and b"".join(heard) == b"fine\n"
    runner.close()


def test_stdout_sink_streams(runner: Runner) -> None:
    chunks: list[bytes] = []
    result = runner.run(["head", "-c", "300000", "/dev/zero"], stdout_sink=chunks.append,
                        timeout=30)
    assert result.ok and result.stdout == b""
    assert sum(len(c) for c in chunks) == 300000
    runner.close()


def test_shell_runs_admin_commands(runner: Runner, tmp_path: Path) -> None:
    result = runner.shell(f"echo 'ok' > '{tmp_path}/out'; exit 3", timeout=30)
    assert result.returncode == 3
    assert (tmp_path / "out").read_text() == "ok\n"
    runner.close()


def test_a_local_shell_commands_own_children_stop_with_it(tmp_path: Path) -> None:
    """A hook that started others (a dump piped to gzip, a sleep): the timeout stops them
    all, instead of waiting for them to close the output pipes."""
    pid_file = tmp_path / "pid"
    result = LocalRunner().shell(f"sleep 60 >/dev/null 2>&1 & echo $! > {pid_file}; wait",
                                 timeout=1)
    assert result.timed_out
    child = Path(f"/proc/{pid_file.read_text().strip()}")
    deadline = time.monotonic() + 30
    while child.exists() and (child / "stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, "the hook's sleep outlived it"
        time.sleep(0.05)


def test_local_missing_binary_is_127() -> None:
    result = LocalRunner().run(["/nonexistent/restic"])
    assert result.returncode == 127 and "cannot start" in result.stderr


def test_ssh_refuses_env_and_delivers_two_secrets_and_input_through_the_launcher(
        sshd: Sshd) -> None:
    """No environment strings to a remote shell; several secrets plus stdin reach the
    command as /dev/fd/N pipes through the python3 launcher, never in its command line."""
    runner = _ssh(sshd)
    with pytest.raises(UsageError):
        runner.run(["true"], env={"A": "b"})
    result = runner.run(["sh", "-c", 'cat "$1" "$2" -', "sh", SecretFile(Secret("first-secret")),
                         SecretFile(Secret("second-secret"))], stdin=b"input\n")
    assert result.ok, result.stderr
    assert result.stdout == b"first-secret\nsecond-secret\ninput\n"


def test_ssh_unknown_key_is_not_retried(sshd: Sshd, tmp_path: Path) -> None:
    sleeps: list[float] = []
    runner = SshRunner(job="t", address="127.0.0.1", port=sshd.port, user="root",
                       identity_file=sshd.identity, known_hosts=tmp_path / "empty",
                       sleep=sleeps.append, **TIMING)
    with pytest.raises(HostKeyError, match=r"only if they match, run: backupctl trust t$"):
        runner.run(["true"])
    assert sleeps == [] and runner.connect_attempts_made == 1


def test_ssh_connection_refused_is_retried_a_bounded_number_of_times(tmp_path: Path,
                                                                     sshd: Sshd) -> None:
    sleeps: list[float] = []
    runner = SshRunner(job="t", address="127.0.0.1", port=free_port(), user="root",
                       identity_file=sshd.identity, known_hosts=sshd.known_hosts,
                       connect_attempts=4, sleep=sleeps.append, **TIMING)
    with pytest.raises(ConnectError, match="tried 4 times"):
        runner.run(["true"])
    assert runner.connect_attempts_made == 4
    assert len(sleeps) == 3 and sleeps == sorted(sleeps)  # exponential backoff


def test_ssh_wrong_identity_is_not_retried(sshd: Sshd, tmp_path: Path) -> None:
    import subprocess

    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    sleeps: list[float] = []
    runner = SshRunner(job="t", address="127.0.0.1", port=sshd.port, user="root",
                       identity_file=other, known_hosts=sshd.known_hosts, sleep=sleeps.append,
                       **TIMING)
    with pytest.raises(ConnectError, match="authentication as root"):
        runner.run(["true"])
    assert sleeps == []


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_ssh_lost_connection_is_a_connect_error(sshd: Sshd) -> None:
    import os
    import signal
    import threading

    runner = _ssh(sshd)
    assert runner.run(["true"]).ok
    outcome: list[BaseException | object] = []

    def long_command() -> None:
        try:
            outcome.append(runner.run(["sleep", "60"], timeout=120))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=long_command)
    thread.start()
    time.sleep(1)
    assert sshd.proc is not None
    for child in _children(sshd.proc.pid):  # the per-connection sshd of our session
        os.kill(child, signal.SIGKILL)
    thread.join(timeout=60)
    assert len(outcome) == 1
    result = outcome[0]
    assert isinstance(result, ConnectError), result
    assert "connection to root@127.0.0.1" in str(result) and "was lost" in str(result)


def test_ssh_connection_detects_a_silently_dead_peer(sshd: Sshd) -> None:
    """Keepalives plus TCP_USER_TIMEOUT (ssh_keepalive, ssh_dead_after): a dropped network
    ends the connection in bounded time, not at command_timeout. Values other than the
    defaults, so a runner that ignored them would fail here."""
    import socket

    runner = _ssh(sshd, keepalive=7, dead_after=42)
    try:
        assert runner.run(["true"]).ok
        transport = runner._client.get_transport()  # type: ignore[union-attr]
        assert transport is not None
        interval = transport.packetizer._Packetizer__keepalive_interval  # type: ignore[union-attr]
        assert interval == 7
        sock = transport.sock
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 42_000
    finally:
        runner.close()


def test_ssh_prefers_aes_gcm_for_its_throughput(sshd: Sshd) -> None:
    """A served repository's bytes all pass through paramiko: an AEAD cipher, no MAC pass."""
    runner = _ssh(sshd)
    try:
        runner.connect()
        transport = runner._client.get_transport() if runner._client else None
        assert transport is not None
        # the stubs know only local_cipher (what this side sends with: the served bytes)
        assert transport.local_cipher == "aes128-gcm@openssh.com"
    finally:
        runner.close()
