"""A remote port forward through OpenSSH's own client (`ssh -N -R`): the recovery's data path.

paramiko's forward moves every byte through one Python transport thread (~200 MiB/s here,
and it competes for the GIL with the rest of backupctl); OpenSSH's client does it in C
(AES-GCM preferred: AES-NI). `forward(Target, local_port=)` starts it for the block and
yields the server's loopback port, or None when it cannot (no `ssh`, the identity needs a
passphrase or an agent, the server refuses, nothing within UP_WITHIN seconds): the caller
then uses paramiko's forward (`SshRunner.forward_remote`).

The same rules as the paramiko connection, enforced by OpenSSH itself:
- the host key is checked against backupctl's known_hosts only (the same file: paramiko
  writes OpenSSH's format, `[host]:port` for a port other than 22), never added or updated
  (`StrictHostKeyChecking=yes`, `UpdateHostKeys=no`, no global file, no config file);
- the identity is the job's key file only (`IdentitiesOnly`, no agent), `BatchMode`: no
  password is ever asked or given;
- the forward is bound to the server's 127.0.0.1, its port picked by the server
  (`-R 127.0.0.1:0:…`, read back from ssh's "Allocated port N" line);
- it dies with backupctl (started through `serve.dying_with`: PR_SET_PDEATHSIG, a session
  of its own) and is stopped when the block ends, whatever ends it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from backupctl.execute import raise_if_cancelled
from backupctl.execute.serve import PortLog, dying_with, stop

log = logging.getLogger(__name__)

SSH = "ssh"
UP_WITHIN = 10.0  # seconds until the forward must be up, else paramiko's (a loaded machine)
_ALLOCATED = re.compile(rb"Allocated port (\d+) for remote forward")


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where and as whom: the SSH runner's own settings."""

    address: str
    port: int
    user: str
    identity: Path
    known_hosts: Path
    keepalive: int  # seconds (the global ssh_keepalive)
    dead_after: int  # seconds (ssh_dead_after)


def argv(target: Target, *, local_port: int, ssh: str = SSH) -> list[str]:
    """ssh's command line: no secret in it (a key file's path, never a password)."""
    alive = max(1, target.keepalive)
    options = {
        "BatchMode": "yes", "StrictHostKeyChecking": "yes", "UpdateHostKeys": "no",
        "UserKnownHostsFile": str(target.known_hosts), "GlobalKnownHostsFile": "/dev/null",
        "IdentitiesOnly": "yes", "IdentityAgent": "none", "ExitOnForwardFailure": "yes",
        "ServerAliveInterval": str(alive),
        "ServerAliveCountMax": str(max(1, target.dead_after // alive)),
        "ConnectTimeout": str(int(UP_WITHIN)), "LogLevel": "INFO",
        "Ciphers": "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"}
    return [ssh, "-F", "none", "-N", "-T", *(a for k, v in options.items()
                                             for a in ("-o", f"{k}={v}")),
            "-i", str(target.identity), "-p", str(target.port),
            "-R", f"127.0.0.1:0:127.0.0.1:{local_port}", "-l", target.user, "--",
            target.address]


@contextlib.contextmanager
def forward(target: Target, *, local_port: int, ssh: str = SSH,
            up_within: float = UP_WITHIN) -> Iterator[int | None]:
    """127.0.0.1:`local_port` here reachable on the server's 127.0.0.1:PORT for the block:
    yields PORT, or None when OpenSSH's client could not make the forward (nothing runs)."""
    raise_if_cancelled()
    program = shutil.which(ssh)
    if program is None or not target.identity.is_file():
        yield None
        return
    try:
        proc = subprocess.Popen(dying_with(argv(target, local_port=local_port, ssh=program)),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        log.debug("cannot start %s (%s): paramiko's forward instead", program, exc)
        yield None
        return
    try:
        assert proc.stderr is not None
        said = PortLog(proc.stderr, pattern=_ALLOCATED, name="ssh-forward-log", keep=10)
        said.found.wait(up_within)
        raise_if_cancelled()
        if said.port is None:
            log.debug("ssh -R to %s did not come up (%s): paramiko's forward instead",
                      target.address, _text(said) or f"nothing within {up_within:.0f} s")
            stop(proc)
            yield None
            return
        log.debug("forwarding %s 127.0.0.1:%d to 127.0.0.1:%d here (OpenSSH, pid %d)",
                  target.address, said.port, local_port, proc.pid)
        yield said.port
    finally:
        stop(proc)


def _text(said: PortLog) -> str:
    """ssh's last lines, on one line for the log."""
    return b" ".join(line.strip() for line in said.lines).decode("utf-8", "replace")
