"""How a remote command receives its secrets: never on a command line or in an environment."""

from __future__ import annotations

import subprocess

from backupctl.execute import Arg, Secret, SecretFile
from backupctl.execute.ssh import remote_command


def _run_like_sshd(command: str, stdin: bytes | None) -> bytes:
    """sshd runs the command line with the login shell; here: sh -c on this machine."""
    return subprocess.run(["sh", "-c", command], input=stdin or b"", capture_output=True,
                          check=True, timeout=30).stdout


def test_one_secret_is_the_commands_stdin() -> None:
    command, stdin = remote_command(["cat", SecretFile(Secret("pw-one"))], None)
    assert "pw-one" not in command and command == "cat /dev/stdin"
    assert _run_like_sshd(command, stdin) == b"pw-one\n"


def test_two_secrets_and_input_data_go_through_pipes() -> None:
    argv: list[Arg] = ["sh", "-c", 'cat "$1"; cat "$2"; cat', "sh",
                       SecretFile(Secret("url-secret")), SecretFile(Secret("pw-two"))]
    command, stdin = remote_command(argv, b"the data stream\n")
    assert "url-secret" not in command and "pw-two" not in command
    assert _run_like_sshd(command, stdin) == b"url-secret\npw-two\nthe data stream\n"


def test_a_missing_program_is_exit_127_like_a_shell() -> None:
    command, stdin = remote_command(["no-such-program-x", SecretFile(Secret("a")),
                                     SecretFile(Secret("b"))], None)
    done = subprocess.run(["sh", "-c", command], input=stdin, capture_output=True, timeout=30)
    assert done.returncode == 127 and b"cannot start no-such-program-x" in done.stderr
