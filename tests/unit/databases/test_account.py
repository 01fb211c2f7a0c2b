"""The restore user (SPEC §10a): who may run the throwaway server, and what it must reach."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from backupctl.databases import account
from backupctl.databases.account import ServerUser
from backupctl.errors import UsageError
from backupctl.execute.fake import FakeRunner

STRANGER = ServerUser("stranger", uid=4242, gid=4242, groups=frozenset({4242, 77}))


def _stat(path: Path, mode: int, *, uid: int = 0, gid: int = 0) -> os.stat_result:
    path.chmod(mode)
    real = path.stat()
    return os.stat_result((mode | (real.st_mode & ~0o7777), *tuple(real)[1:4], uid, gid,
                           *tuple(real)[6:]))


@pytest.mark.parametrize(("mode", "uid", "gid", "bits", "allowed"), [
    (0o700, 4242, 0, 1, True), (0o700, 0, 0, 1, False), (0o711, 0, 0, 1, True),
    (0o710, 0, 77, 1, True), (0o701, 0, 77, 1, False), (0o644, 0, 0, 4, True),
    (0o640, 0, 0, 4, False), (0o044, 4242, 0, 4, False)])
def test_may_reads_the_owner_group_or_other_bits(tmp_path: Path, mode: int, uid: int,
                                                 gid: int, bits: int, allowed: bool) -> None:
    assert STRANGER.may(_stat(tmp_path, mode, uid=uid, gid=gid), bits) is allowed


@pytest.fixture
def base() -> Iterator[Path]:
    """A 0711 directory under /tmp (pytest's own tmp_path sits in a 0700 one)."""
    where = Path(tempfile.mkdtemp(prefix="bk-account-"))
    where.chmod(0o711)
    yield where
    shutil.rmtree(where)


def test_blocked_names_the_first_directory_the_user_cannot_pass(base: Path) -> None:
    outer = base / "outer"
    inner = outer / "inner"
    inner.mkdir(parents=True)
    outer.chmod(0o700)
    inner.chmod(0o711)

    found = account.blocked(inner / "scratch", STRANGER)

    assert found is not None and found[0] == outer
    outer.chmod(0o711)
    assert account.blocked(inner / "scratch", STRANGER) is None
    link = base / "link"
    link.symlink_to(inner)
    inner.chmod(0o700)  # through the link the real directory is what counts
    assert account.blocked(link, STRANGER) == (inner, inner.stat())


@pytest.mark.parametrize(("name", "says"), [("root", "is root"),
                                            ("postgres", "owns the orchestrator's own")])
def test_privileged_users_are_refused(name: str, says: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        pytest.skip(f"no {name} user here")
    with pytest.raises(UsageError, match=says) as refused:
        account.lookup(name)
    assert refused.value.status == 2 and "nothing was restored" in str(refused.value)


def test_the_user_running_backupctl_is_refused() -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    with pytest.raises(UsageError, match=r"is root|is the user running backupctl"):
        account.lookup(me)


def test_a_missing_user_says_how_to_create_it() -> None:
    with pytest.raises(UsageError) as missing:
        account.lookup("bk-nobody-here")
    assert "restore_user 'bk-nobody-here' does not exist" in str(missing.value)
    assert ("useradd --system --no-create-home --shell /usr/sbin/nologin bk-nobody-here"
            in str(missing.value))


def test_without_root_sudo_runs_as_the_user_and_its_refusal_says_the_sudoers_line(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(account, "lookup", lambda name: STRANGER)
    monkeypatch.setattr("backupctl.databases.account.os.geteuid", lambda: 31337)
    runner = FakeRunner()
    runner.on("sudo", "true", returncode=1, stderr="sudo: a password is required")

    assert STRANGER.prefix == ["sudo", "-n", "-u", "stranger", "--"]
    with pytest.raises(UsageError) as refused:
        account.require("stranger", scratch_dir=tmp_path, runner=runner)

    assert "may not run programs as restore_user 'stranger' through sudo" in str(refused.value)
    assert "#31337 ALL=(stranger) NOPASSWD: ALL" in str(refused.value)
    assert [c.words for c in runner.calls] == [["sudo", "-n", "-u", "stranger", "--", "true"]]


def test_as_root_runuser_runs_as_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backupctl.databases.account.os.geteuid", lambda: 0)
    assert STRANGER.prefix == ["runuser", "-u", "stranger", "--"]
