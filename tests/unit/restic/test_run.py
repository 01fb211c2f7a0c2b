"""restic/run.py: the version cache (one `restic version` per binary); a repository
restic cannot reach is unreachable, never a 15-minute wait."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backupctl.errors import Reason, ResticError
from backupctl.execute import Secret
from backupctl.execute.fake import FakeRunner
from backupctl.restic import commands
from backupctl.restic.codes import ResticExit
from backupctl.restic.run import Repo, attempt, cached_version, run


@pytest.fixture
def restic_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    binary = bin_dir / "restic"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return binary


def _runner(version: str) -> FakeRunner:
    runner = FakeRunner(host="local")
    runner.on("version", stdout=f"restic {version} compiled with go1.19.8\n".encode())
    return runner


def test_the_version_is_asked_once_per_binary(restic_on_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "restic-version.json"
    first = _runner("0.14.0")
    assert cached_version(first, cache) == "0.14.0"
    assert cached_version(first, cache) == "0.14.0"
    assert len(first.calls) == 1

    restic_on_path.write_text("#!/bin/sh\n# upgraded\n")  # another size and mtime
    os.utime(restic_on_path, ns=(1, 1))
    upgraded = _runner("0.18.0")
    assert cached_version(upgraded, cache) == "0.18.0"
    assert len(upgraded.calls) == 1


def test_an_unknown_version_is_not_cached(restic_on_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "restic-version.json"
    broken = FakeRunner(host="local")
    broken.on("version", returncode=1)
    assert cached_version(broken, cache) == "unknown"
    assert not cache.exists()
    assert cached_version(_runner("0.14.0"), cache) == "0.14.0"


def test_a_damaged_cache_is_asked_again(restic_on_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "restic-version.json"
    cache.write_text("{not json")
    assert cached_version(_runner("0.14.0"), cache) == "0.14.0"
    assert "0.14.0" in cache.read_text()


RETRYING = ('Stat(<config/>) returned error, retrying after 720ms: Head "http://127.0.0.1:9/'
            'x/config": dial tcp 127.0.0.1:9: connect: connection refused\n')


def test_a_restic_retrying_its_repository_is_unreachable_with_a_hint(
        tmp_path: Path) -> None:
    runner = FakeRunner(host="backup@emr:22")
    runner.on("snapshots", returncode=0, stderr=RETRYING)

    with pytest.raises(ResticError) as raised:
        run(runner, commands.snapshots("rest:http://127.0.0.1:9/x/", Secret("unit-pw-4b1d")),
            job="emr-db", what="listing snapshots", timeout=60)

    message = str(raised.value)
    assert "(repository unreachable)" in message and "was stopped" in message
    assert "reachable from where restic ran" in message and "backupctl init" not in message
    assert raised.value.reason is Reason.UNREACHABLE


def test_the_stale_lock_removal_is_watched_too(tmp_path: Path) -> None:
    """After a locked run, `restic unlock` against a repository gone meanwhile must not
    retry for 15 minutes either."""
    repo = Repo("primary", "rest:http://127.0.0.1:9/x/", Secret("unit-pw-4b1d"))
    runner = FakeRunner(host="local")
    runner.on("snapshots", returncode=1, stderr="unable to create lock in backend: "
              "repository is already locked by PID 7")
    runner.on("unlock", returncode=0, stderr=RETRYING)
    stopped = []

    attempt(runner, commands.snapshots(repo.url, repo.password), timeout=60, unlock=repo,
            on_unlock=lambda done: stopped.append(done.stopped))

    assert stopped == [True]


def test_a_failure_shows_restic_0_18s_exit_error_as_its_message() -> None:
    runner = FakeRunner(host="local")
    runner.on("snapshots", returncode=12, stderr='{"message_type":"exit_error","code":12,'
              '"message":"Fatal: wrong password or no key found\\n"}\n')

    with pytest.raises(ResticError) as raised:
        run(runner, commands.snapshots("/srv/r", Secret("unit-pw-4b1d")), job="emr-db",
            what="listing snapshots", timeout=60)

    assert "exited 12: Fatal: wrong password or no key found" in str(raised.value)
    assert "message_type" not in str(raised.value) and raised.value.reason is Reason.PASSWORD


def test_a_locked_run_is_retried_once_after_unlock_and_only_with_a_repository() -> None:
    repo = Repo("primary", "/srv/r", Secret("unit-pw-4b1d"))
    locked = "unable to create lock in backend: repository is already locked by PID 7"
    runner = FakeRunner(host="local")
    runner.on("snapshots", returncode=1, stderr=locked)
    runner.on("unlock", returncode=0)

    result, outcome = attempt(runner, commands.snapshots(repo.url, repo.password), timeout=60,
                              unlock=repo)
    assert outcome is ResticExit.LOCKED and result.returncode == 1  # still locked: told so
    assert [next(w for w in map(str, c.argv) if w in ("snapshots", "unlock"))
            for c in runner.calls] == ["snapshots", "unlock", "snapshots"]

    alone = FakeRunner(host="local")
    alone.on("snapshots", returncode=1, stderr=locked)
    assert attempt(alone, commands.snapshots(repo.url, repo.password),
                   timeout=60)[1] is ResticExit.LOCKED
    assert len(alone.calls) == 1
