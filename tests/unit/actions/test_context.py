"""Context: what reaches the runner of a job's host from the global configuration."""

from __future__ import annotations

from pathlib import Path

from backupctl.actions.context import Context, ssh_runner_for
from backupctl.config.validate import Config, load_config
from backupctl.execute import Counting, Programs, program
from backupctl.execute.fake import FakeRunner
from backupctl.execute.local import LocalRunner
from backupctl.execute.ssh import SshRunner
from backupctl.restic.reach import Bounded
from backupctl.state.db import Store


def _config(root: Path, settings: str, host: str) -> Config:
    (root / "jobs").mkdir()
    (root / "pw").write_text("unit-test-password\n")
    (root / "pw").chmod(0o600)
    (root / "id").write_text("not read: no connection is made\n")
    (root / "id").chmod(0o600)
    (root / "backupctl.yaml").write_text(
        f"jobs_dir: {root / 'jobs'}\nstate_dir: {root / 'state'}\n"
        f"scratch_dir: {root / 'scratch'}\nknown_hosts: {root / 'kh'}\n{settings}")
    (root / "jobs" / "emr.yaml").write_text(
        f"job: emr\nhost: {host}\nsource: {{paths: [/srv/emr]}}\n"
        f"repository: {{url: {root / 'repo'}, password_file: {root / 'pw'}}}\n"
        "generations: {last: 3}\nschedule: {backup: daily, verify: weekly}\n")
    return load_config(root / "backupctl.yaml")


REMOTE = "{address: 192.0.2.10, user: backupctl, identity_file: ../id}"


def _inner(runner: object) -> object:
    """Every runner of a host is bounded against a silent repository server (reach)."""
    assert isinstance(runner, Bounded)
    return runner.runner


def test_the_ssh_timing_settings_reach_the_runner(tmp_path: Path) -> None:
    config = _config(tmp_path, "ssh_keepalive: 3s\nssh_dead_after: 45s\n", REMOTE)

    runner = _inner(ssh_runner_for(config, config.job("emr")))

    assert isinstance(runner, SshRunner)
    assert (runner.keepalive, runner.dead_after) == (3, 45)
    assert runner.host == "backupctl@192.0.2.10:22"


def test_without_the_settings_the_runner_gets_the_documented_defaults(tmp_path: Path) -> None:
    config = _config(tmp_path, "", REMOTE)

    runner = _inner(ssh_runner_for(config, config.job("emr")))

    assert isinstance(runner, SshRunner)
    assert (runner.keepalive, runner.dead_after) == (15, 120)


def test_a_local_job_gets_a_local_runner(tmp_path: Path) -> None:
    config = _config(tmp_path, "ssh_keepalive: 3s\n", "{address: local}")
    assert isinstance(_inner(ssh_runner_for(config, config.job("emr"))), LocalRunner)


def test_host_restic_is_what_the_hosts_runner_starts(tmp_path: Path) -> None:
    host = "{address: 192.0.2.10, user: backupctl, identity_file: ../id, restic: /opt/r/restic}"
    config = _config(tmp_path, "restic: /usr/local/bin/restic-orchestrator\n", host)

    runner = ssh_runner_for(config, config.job("emr"))

    assert isinstance(programs := _inner(runner), Programs)
    assert isinstance(programs.runner, SshRunner)
    assert program(runner, "restic") == "/opt/r/restic"
    assert runner.host == "backupctl@192.0.2.10:22" and programs.runner.keepalive == 15


def test_the_global_restic_is_the_orchestrators_and_a_local_jobs(tmp_path: Path) -> None:
    config = _config(tmp_path, "restic: /opt/restic-0.18/restic\n", "{address: local}")
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")

    fake = FakeRunner()
    fake.on("version")
    local = Context(config=config, store=store, local=fake).local
    job_runner = ssh_runner_for(config, config.job("emr"))

    assert program(local, "restic") == program(job_runner, "restic") == "/opt/restic-0.18/restic"
    assert program(Counting(local), "restic") == "/opt/restic-0.18/restic"
    local.run(["restic", "version"])
    assert [c.words for c in fake.calls] == [["/opt/restic-0.18/restic", "version"]]


def test_without_restic_settings_no_runner_is_wrapped(tmp_path: Path) -> None:
    config = _config(tmp_path, "", "{address: local}")
    runner = ssh_runner_for(config, config.job("emr"))
    assert isinstance(_inner(runner), LocalRunner) and program(runner, "restic") == "restic"
