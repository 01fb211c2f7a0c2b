"""FakeRunner: scripted results, recorded argv, and no silent success for unplanned commands."""

from __future__ import annotations

import pytest

from backupctl.execute import Secret, SecretFile
from backupctl.execute.fake import FakeRunner, UnexpectedCommand


def test_records_argv_with_secret_placeholders() -> None:
    fake = FakeRunner()
    fake.on("restic")
    secret = Secret("fake-secret-1")
    fake.run(["restic", "--password-file", SecretFile(secret), "snapshots"], timeout=5)
    [call] = fake.calls
    assert call.words == ["restic", "--password-file", "<secret>", "snapshots"]
    assert call.secrets == [secret]
    assert call.timeout == 5
    assert fake.leaks("fake-secret-1") == []


def test_leaks_finds_a_secret_in_argv_env_or_stdin() -> None:
    fake = FakeRunner()
    fake.on("x")
    fake.run(["x", "--password=fake-secret-2"])
    fake.run(["x"], env={"RESTIC_PASSWORD": "fake-secret-2"})
    fake.run(["x"], stdin=b"fake-secret-2\n")
    assert len(fake.leaks("fake-secret-2")) == 3


def test_unplanned_commands_raise() -> None:
    fake = FakeRunner()
    with pytest.raises(UnexpectedCommand, match="rm -rf /"):
        fake.run(["rm", "-rf", "/"])


def test_newest_rule_wins_and_times_limits_a_rule() -> None:
    fake = FakeRunner()
    fake.on("restic", returncode=0)
    fake.on("restic", returncode=1, times=1)
    assert fake.run(["restic"]).returncode == 1
    assert fake.run(["restic"]).returncode == 0


def test_stdout_goes_to_the_sink_when_given() -> None:
    fake = FakeRunner()
    fake.on("cat", stdout=b"abc")
    got: list[bytes] = []
    result = fake.run(["cat"], stdout_sink=got.append)
    assert got == [b"abc"] and result.stdout == b""


def test_shell_is_sh_c() -> None:
    fake = FakeRunner()
    fake.on("sh", returncode=4, stderr="boom")
    result = fake.shell("exit 4")
    assert fake.calls[0].words == ["sh", "-c", "exit 4"]
    assert not result.ok and "exited 4: boom" in result.describe()


def test_argv_must_be_strings_or_secret_files() -> None:
    fake = FakeRunner()
    fake.on("x")
    with pytest.raises(TypeError):
        fake.run(["x", 3])  # type: ignore[list-item]
