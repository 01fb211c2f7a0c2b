"""What every action needs: configuration, state, clock, locks, and how to reach hosts."""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from backupctl.clock import Clock, system_clock
from backupctl.config.schema import Job
from backupctl.config.validate import Config
from backupctl.execute import Programs, Runner, cleaning_up
from backupctl.execute.local import LocalRunner
from backupctl.restic.commands import RESTIC
from backupctl.restic.reach import Bounded
from backupctl.restic.run import cached_version
from backupctl.signing import Signer, load_signer
from backupctl.state.db import Store
from backupctl.state.locks import FileLocks, JobLocks
from backupctl.state.queries import RunRow

VERSION_CACHE = "restic-version.json"  # in state_dir: `restic version`, once per binary


class RunObserver(Protocol):
    """Told when a run starts and when it is recorded (notifications, dead-man's pings).

    Called outside the run's transaction; an exception here never changes the run (jobrun
    logs it and goes on), and it must not take long."""

    def started(self, ctx: Context, job: Job, row: RunRow) -> None: ...

    def finished(self, ctx: Context, job: Job, row: RunRow) -> None: ...


def with_restic(runner: Runner, binary: str, *,
                version: Callable[[], str] | None = None) -> Runner:
    """`runner`, starting `binary` for `restic` (host.restic, the global `restic`), bounded
    against a silent repository server (restic.reach; `version`: restic's version there,
    when known without asking)."""
    return Bounded(runner if binary == RESTIC else Programs(runner, {RESTIC: binary}),
                   version=version)


def ssh_runner_for(config: Config, job: Job) -> Runner:
    if job.host.is_local:
        binary = job.host.restic if job.host.restic != RESTIC else config.settings.restic
        return with_restic(LocalRunner(), binary)
    # Imported here: paramiko and its dependencies cost ~0.1 s of start-up that a run on
    # local jobs only (the scheduled quick verify, `metrics`, `evidence`) never needs.
    from backupctl.execute.ssh import SshRunner

    assert job.host.user is not None and job.host.identity_file is not None
    return with_restic(SshRunner(job=job.name, address=job.host.address, port=job.host.port,
                                 user=job.host.user, identity_file=job.host.identity_file,
                                 known_hosts=config.settings.known_hosts,
                                 keepalive=config.settings.ssh_keepalive,
                                 dead_after=config.settings.ssh_dead_after), job.host.restic)


@dataclass
class Context:
    config: Config
    store: Store
    clock: Clock = system_clock
    operator: str = "scheduler"
    host_runner: Callable[[Config, Job], Runner] = ssh_runner_for
    local: Runner = field(default_factory=LocalRunner)
    locks: JobLocks | None = None  # default: flock files in state_dir
    observers: list[RunObserver] = field(default_factory=list)
    due: bool = False  # --due: a session re-checks that its job is due once it holds the lock

    def __post_init__(self) -> None:
        self.local = with_restic(self.local, self.config.settings.restic,
                                 version=lambda: self.restic_version)
        if self.locks is None:
            self.locks = FileLocks(self.config.settings.state_dir)

    @property
    def job_locks(self) -> JobLocks:
        assert self.locks is not None
        return self.locks

    def runner(self, job: Job) -> Runner:
        """A new runner for the job's host (the caller closes it)."""
        return self.host_runner(self.config, job)

    @functools.cached_property
    def signer(self) -> Signer | None:
        """The evidence key (None until `backupctl evidence init-key` made one)."""
        return load_signer(self.config.settings.evidence_key)

    @functools.cached_property
    def restic_version(self) -> str:
        with cleaning_up():  # also asked while recording a run stopped by a signal
            return cached_version(self.local, self.config.settings.state_dir / VERSION_CACHE)

    @property
    def timeout(self) -> float:
        return float(self.config.settings.command_timeout)


def manual_operator(name: str | None) -> str:
    """The operator of a manual run: the given name, else the login user."""
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
