"""A repository on the orchestrator, served to a host over the job's own SSH connection.

One mechanism, two users (SPEC §15 and §11):

- **backup** of a job that gives only `repository.local_url` (`for_host`): the host's restic
  adds snapshots (and database dumps) through the tunnel; forget/prune run on the
  orchestrator through `local_url`, as for every job. No REST server for the admin to run,
  no port to open from the servers to the orchestrator.
- **the recovery onto a replacement server** (`serve`): restic on the target reads the
  repository through the same kind of tunnel, for the restore only.

`serve(runner, url, job=)` takes the repository as the orchestrator reaches it and, for the
block, yields `Served`: `url` is what the remote restic is given. Hand it to the argv
builders (`restic.commands`), which put a URL holding a credential into
`--repository-file` (a pipe; over SSH the runner's stdin), never on a command line; it is a
registered secret, masked in every log and message (`Served.shown` is the masked form).

- `url` a directory here (`/DIR`, `local:/DIR`): `rclone serve restic --append-only` on
  127.0.0.1 (execute.serve: dies with backupctl, even on SIGKILL) with a one-time random
  credential (one user, a new 256-bit token per block), and a remote port forward on the
  runner's SSH connection to the host's 127.0.0.1 (`SshRunner.forward_remote`). The
  recovery starts rclone ahead (`started`: its start overlaps the plan; one token for the
  command) and `serve(early=)` then only forwards to it.
  **Append-only** is the strongest mode rclone has (no read-only one): the host can add
  snapshots and remove its own locks, never delete or overwrite a snapshot, index, pack,
  key or the config, so a host that falls to ransomware cannot destroy its own history. A
  reader (the recovery's `restic restore`) should pass `--no-lock`, then it writes nothing.
- `url` a `rest:http://` server on the orchestrator's loopback: only the forward; the host
  uses the URL's own credential, and that server's own rules (e.g. its `--append-only`).

Whatever ends the block (success, failure, Cancelled by SIGTERM or a lost lease) closes the
forward (the host's port refuses from then on) and stops the server; a SIGKILLed backupctl
takes both with it (the SSH connection drops; rclone, and OpenSSH's `ssh` when it makes the
forward (execute.openssh), get PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from backupctl.config.schema import Job
from backupctl.config.served import local_directory, loopback_rest
from backupctl.errors import UsageError
from backupctl.execute import Runner, Secret
from backupctl.execute.serve import Forwarder, Pending, rest_server, starting
from backupctl.restic import s3
from backupctl.secrets import display_url

log = logging.getLogger(__name__)

USER = "backupctl"  # the one user of a served repository (the token is what matters)


def new_token() -> str:
    """A one-time credential: 256 random bits, URL-safe (it lives inside a rest: URL)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Served:
    """The repository as the remote restic reaches it for the block."""

    url: str  # holds the credential: give it to restic.commands (--repository-file)
    port: int  # the host's loopback port of the forward

    @property
    def shown(self) -> str:
        return display_url(self.url)


@dataclass(frozen=True)
class Backend:
    """What rclone serves for a repository URL: a directory, or an rclone remote (an S3
    bucket) with the variables it needs in rclone's environment (never its argv)."""

    root: Path | str
    shown: str
    env: dict[str, Secret] = field(default_factory=dict)


_AWS_HOST = re.compile(r"^s3[.-]([a-z0-9-]+)\.amazonaws\.com$")


def s3_remote(where: s3.Location, *, region: str) -> str:
    """rclone's on-the-fly S3 remote (rclone >= 1.55 connection string; Debian 12 has 1.60)
    for the bucket and prefix of an `s3:` URL, no key in it. Path-style requests as restic
    (minio-go) makes them to any endpoint but AWS's; AWS's region read from its host name
    (SigV4 needs the bucket's own; minio-go asks the bucket, rclone does not)."""
    host = urllib.parse.urlsplit(where.endpoint).hostname or ""
    if (aws := _AWS_HOST.match(host)) is not None:
        region = aws.group(1)
    path_style = "false" if host.endswith(".amazonaws.com") else "true"

    def quoted(value: str) -> str:  # a value holding `:` or `,` is quoted; `'` doubled
        return "'" + value.replace("'", "''") + "'"

    path = f"{where.bucket}/{where.prefix}" if where.prefix else where.bucket
    return (f":s3,provider=Other,env_auth=false,endpoint={quoted(where.endpoint)},"
            f"region={quoted(region)},force_path_style={path_style}:{path}")


def backend(url: str) -> Backend | None:
    """What `rclone serve restic` serves for `url`: a directory on the orchestrator, or an
    S3 bucket whose credentials are known (`restic.s3.register`: a copy opened by
    `actions.repo.named`), its keys in rclone's environment only; None for anything else."""
    if (directory := local_directory(url)) is not None:
        return Backend(directory, str(directory))
    if s3.is_s3(url) and (keys := s3.credentials_for(url)) is not None:
        where = s3.location(url)
        return Backend(s3_remote(where, region=keys.region), where.shown(), {
            "RCLONE_S3_ACCESS_KEY_ID": keys.key_id,
            "RCLONE_S3_SECRET_ACCESS_KEY": keys.secret_key})
    return None


@dataclass(frozen=True)
class Early:
    """A directory's rclone started ahead of `serve` (`started`): what the caller does
    meanwhile overlaps rclone's start; one credential for the command's blocks."""

    pending: Pending
    credential: Secret


@contextlib.contextmanager
def started(url: str, *, token: Callable[[], str] | None = None) -> Iterator[Early | None]:
    """rclone for `url`, a directory on the orchestrator, started now and stopped when the
    block ends; None for anything else (a loopback rest: server has its own). It listens
    on the orchestrator's loopback only: nothing reaches it before `serve` forwards it."""
    served = backend(url)
    if served is None:
        yield None
        return
    credential = Secret((token or new_token)())  # registered: masked wherever printed
    with starting(served.root, user=USER, password=credential,
                  extra_env=served.env) as pending:
        yield Early(pending, credential)


@contextlib.contextmanager
def serve(runner: Runner, url: str, *, job: str, token: Callable[[], str] | None = None,
          early: Early | None = None) -> Iterator[Served]:
    """`url` (the repository as the orchestrator reaches it: a directory, or a rest:http://
    server on its loopback) reachable by restic on `runner`'s host while the block runs.
    `token` makes the one-time credential (default `new_token`, looked up at each call);
    `early`, the directory's rclone already started (`started`; stopped by its owner)."""
    if not isinstance(runner, Forwarder):
        raise UsageError(f"{job}: {runner.host} is not reached over SSH: nothing to serve "
                         "the repository through")
    if (rest := loopback_rest(url)) is not None:
        with runner.forward_remote(rest.port) as port:
            yield Served(rest.through(port), port)
        return
    served_root = backend(url)
    if served_root is None:
        raise UsageError(f"{job}: {display_url(url)} is neither a directory on the "
                         "orchestrator, an S3 copy opened with its credentials, nor a "
                         "rest:http:// server on its loopback: the host must reach it itself "
                         "(repository.url)")
    with contextlib.ExitStack() as stack:
        if early is None:
            credential = Secret((token or new_token)())  # registered: masked when printed
            server = stack.enter_context(rest_server(
                served_root.root, user=USER, password=credential, extra_env=served_root.env))
        else:
            credential, server = early.credential, early.pending.ready()
        port = stack.enter_context(runner.forward_remote(server.port))
        served = Served(f"rest:http://{USER}:{credential.reveal()}@127.0.0.1:{port}/", port)
        log.debug("%s: %s served to %s on its 127.0.0.1:%d (append-only, over SSH)", job,
                  served_root.shown, runner.host, port)
        yield served


@contextlib.contextmanager
def for_host(job: Job, runner: Runner) -> Iterator[Job]:
    """The job as its host reaches the repository during the block: unchanged when it gives
    `repository.url`; a local job's `local_url`; else `local_url` served over the runner's
    SSH connection, the copy's `url` being the served one (`repository.host_url`)."""
    repository = job.repository
    if not repository.served:
        yield job
    elif job.host.is_local:
        yield reaching(job, repository.orchestrator_url)
    else:
        with serve(runner, repository.orchestrator_url, job=job.name) as served:
            yield reaching(job, served.url)


def reaching(job: Job, url: str) -> Job:
    """A copy of the job whose host reaches the repository at `url`."""
    return job.model_copy(update={"repository": job.repository.model_copy(
        update={"url": url})})


def plan(job: Job) -> tuple[Job, list[str]]:
    """What serving the repository would do (--dry-run), and the job as its host would then
    reach it; the credential shows as `***`."""
    repository = job.repository
    if not repository.served:
        return job, []
    if job.host.is_local:
        return reaching(job, repository.orchestrator_url), []
    url = repository.orchestrator_url
    where = job.host.display()
    forward = (f"ssh {where}: remote port forward, its 127.0.0.1:<port> → orchestrator "
               "127.0.0.1:{port} (closed when the run ends)")
    if (rest := loopback_rest(url)) is not None:
        return reaching(job, rest.through("<port>")), [forward.format(port=rest.port)]
    steps = [f"on orchestrator: rclone serve restic --append-only --addr 127.0.0.1:<port> "
             f"--htpasswd <pipe: one-time credential> {url} (stops with the run)",
             forward.format(port="<port>")]
    return reaching(job, f"rest:http://{USER}:<one-time>@127.0.0.1:<port>/"), steps
