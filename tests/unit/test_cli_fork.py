"""tests/cli_fork.py: the forked CLI behaves as `python -m backupctl` run as a subprocess."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import cli_fork
from tests.conftest import BACKUPCTL


def both(*args: str, env: dict[str, str] | None = None,
         ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    environment = {**os.environ, **(env or {})}
    forked = cli_fork.run(args, env=environment, timeout=60)
    started = subprocess.run([*BACKUPCTL, *args], env=environment, capture_output=True,
                             text=True, timeout=60, check=False)
    return forked, started


@pytest.mark.parametrize("args", [("--version",), ("validate", "--nope"), ("status",)])
def test_exit_status_and_output_are_the_subprocess_ones(args: tuple[str, ...],
                                                        tmp_path: Path) -> None:
    missing = tmp_path / "設定 file.yaml"
    forked, started = both("-c", str(missing), *args)

    # click names the program after argv: `python -m backupctl` there, `backupctl` (as the
    # installed command) here
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        started.returncode, started.stdout,
        started.stderr.replace("python -m backupctl", "backupctl"))


def test_the_environment_and_stdin_are_the_commands_own(tmp_path: Path) -> None:
    config = tmp_path / "from-env.yaml"

    forked = cli_fork.run(["validate"], env={**os.environ, "BACKUPCTL_CONFIG": str(config)},
                          input="ignored\n", timeout=60)

    assert forked.returncode == 2 and str(config) in forked.stderr
    assert "BACKUPCTL_CONFIG" not in os.environ


def test_a_command_that_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)  # opening it for reading waits for a writer that never comes

    with pytest.raises(subprocess.TimeoutExpired):
        cli_fork.run(["-c", str(fifo), "validate"], env=dict(os.environ), timeout=2)


def test_check_raises_like_subprocess_run(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        cli_fork.run(["-c", str(tmp_path / "none.yaml"), "validate"], env=dict(os.environ),
                     timeout=60, check=True)

    assert failed.value.returncode == 2

