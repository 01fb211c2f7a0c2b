"""Env: plain variables a command needs (`TZ=UTC0` for restic's `--time`), in the child's
environment locally and through `env` on a host over SSH."""

from __future__ import annotations

from backupctl.execute import Arg, Env, display, plain_env, split_env
from backupctl.execute.local import LocalRunner
from backupctl.execute.ssh import remote_command

UTC = Env((("TZ", "UTC0"),))


def test_a_local_command_gets_it_in_its_environment_not_in_argv() -> None:
    result = LocalRunner().run(["sh", "-c", 'echo "$TZ $#"', UTC], timeout=30)
    assert result.ok and result.stdout == b"UTC0 0\n"


def test_a_remote_command_is_started_through_env_whatever_the_login_shell() -> None:
    command, stdin = remote_command(["sh", "-c", 'echo "$TZ"', UTC], None)
    assert command == "env TZ=UTC0 sh -c 'echo \"$TZ\"'" and stdin is None


def test_it_is_shown_before_the_command_and_kept_out_of_its_words() -> None:
    argv: list[Arg] = ["restic", "backup", UTC, "--", "/srv"]
    assert display(argv) == "TZ=UTC0 restic backup -- /srv"
    assert split_env(argv) == (["restic", "backup", "--", "/srv"], {})
    assert plain_env(argv) == {"TZ": "UTC0"}
