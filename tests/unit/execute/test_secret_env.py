"""SecretEnv: secrets a program reads from its environment only (restic's S3 keys)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupctl.errors import UsageError
from backupctl.execute import Arg, Secret, SecretEnv, display, split_env
from backupctl.execute.fake import FakeRunner
from backupctl.execute.local import LocalRunner
from backupctl.execute.ssh import SshRunner

KEYS = SecretEnv((("AWS_SECRET_ACCESS_KEY", Secret("env-only-secret")),), label="s3")


def test_the_child_gets_the_value_in_its_environment_and_never_in_argv() -> None:
    result = LocalRunner().run(["sh", "-c", 'printf %s "$AWS_SECRET_ACCESS_KEY"; echo " $#"',
                                KEYS], timeout=30)
    assert result.ok and result.stdout == b"env-only-secret 0\n"  # no extra argv word
    assert "env-only-secret" not in result.argv


def test_display_and_split_leave_it_out_of_the_command_line() -> None:
    argv: list[Arg] = ["restic", "--repo", "s3:https://h/b/p", KEYS, "snapshots"]
    assert display(argv) == "restic --repo s3:https://h/b/p snapshots"
    words, env = split_env(argv)
    assert words == ["restic", "--repo", "s3:https://h/b/p", "snapshots"]
    assert env == {"AWS_SECRET_ACCESS_KEY": "env-only-secret"}
    runner = FakeRunner(default=None)
    runner.on("snapshots")
    runner.run(argv)
    assert "env-only-secret" not in runner.calls[0].text


def test_ssh_refuses_to_send_an_environment(tmp_path: Path) -> None:
    runner = SshRunner(job="j", address="127.0.0.1", port=1, user="u",
                       identity_file=tmp_path / "id", known_hosts=tmp_path / "kh",
                       keepalive=5, dead_after=5)
    with pytest.raises(UsageError, match="not sent over SSH"):
        runner.run(["restic", KEYS, "snapshots"])
