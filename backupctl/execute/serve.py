"""A restic REST server on the orchestrator's loopback for one block (`rclone serve restic`).

`rest_server(root, user=, password=)` serves the repository in directory `root` (or an
rclone remote: an S3 copy's bucket, its keys only in rclone's environment) on
127.0.0.1 (a port the kernel picks, read back from rclone's first log line) to one user:

- **append-only** (`--append-only`): clients add objects and remove their own locks; every
  DELETE, and every write over an existing object, is refused (403). rclone has no
  read-only mode: this is the strongest it offers.
- **the password never leaves a pipe**: rclone reads an htpasswd line (its `{SHA}` hash)
  from `/dev/fd/N`; nothing is on a command line, in an environment or on disk.
- **it dies with backupctl**: it starts through a tiny launcher that asks the kernel for
  `PR_SET_PDEATHSIG` (SIGKILL when the thread that started it ends, also when backupctl is
  SIGKILLed) and then becomes rclone; in a session of its own, so a terminal's Ctrl-C
  reaches backupctl, which stops it in order when the block ends.

`Forwarder` is what a runner offers to make such a server reachable on its host (the SSH
runner's remote port forward): `actions.tunnel` puts the two together.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from backupctl.errors import BackupctlError, Reason
from backupctl.execute import Secret, raise_if_cancelled, tail

log = logging.getLogger(__name__)

RCLONE = "rclone"
START_TIMEOUT = 30.0  # seconds until rclone says where it listens (a loaded machine)
STOP_TIMEOUT = 10.0
_LISTENING = re.compile(rb"Serving restic REST API on https?://127\.0\.0\.1:(\d+)/")

# `python3 -I -S -c LAUNCHER PARENT_PID PROGRAM ARGS…`: ask for SIGKILL when the parent
# (thread) ends, make sure it has not ended already (the race the man page warns about),
# then become PROGRAM. No preexec_fn: it is unsafe in a threaded parent.
_LAUNCHER = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
    sys.stderr.write("backupctl: prctl(PR_SET_PDEATHSIG): %s\n" % os.strerror(ctypes.get_errno()))
    os._exit(126)
if os.getppid() != int(sys.argv[1]):
    os._exit(126)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    sys.stderr.write("backupctl: cannot start %s: %s\n" % (sys.argv[2], exc.strerror))
    os._exit(127)
"""


@runtime_checkable
class Forwarder(Protocol):
    """A runner that can make an orchestrator's loopback port reachable on its host."""

    host: str

    def forward_remote(self, local_port: int) -> AbstractContextManager[int]:
        """127.0.0.1:`local_port` here, reachable on the host's 127.0.0.1:PORT (yielded)
        for the block."""
        ...


@dataclass(frozen=True)
class RestServer:
    port: int  # on 127.0.0.1
    pid: int


def htpasswd(user: str, password: Secret) -> bytes:
    """One htpasswd line. `{SHA}` (SHA-1) because rclone checks it on every request and the
    password is a 256-bit random token (no dictionary to try): bcrypt would cost each of
    restic's requests ~50 ms for nothing."""
    digest = hashlib.sha1(password.reveal().encode()).digest()  # noqa: S324 (see above)
    return f"{user}:{{SHA}}{base64.b64encode(digest).decode()}\n".encode()


def argv(root: Path | str, *, htpasswd_path: str, rclone: str = RCLONE) -> list[str]:
    """rclone's command line (no secret in it: the htpasswd is a pipe's path). `root` is a
    directory or an rclone remote (an S3 bucket's `:s3,…:bucket/prefix`, its keys in
    rclone's environment)."""
    return [rclone, "serve", "restic", "--append-only", "--addr", "127.0.0.1:0", "--config",
            "/dev/null", "--htpasswd", htpasswd_path, "--", str(root)]


def dying_with(command: list[str]) -> list[str]:
    """`command` started through the launcher: SIGKILLed when the starting thread ends."""
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), *command]


@contextlib.contextmanager
def rest_server(root: Path | str, *, user: str, password: Secret, rclone: str = RCLONE,
                extra_env: Mapping[str, Secret] | None = None) -> Iterator[RestServer]:
    """`rclone serve restic --append-only` for `root` on 127.0.0.1 while the block runs."""
    with starting(root, user=user, password=password, rclone=rclone,
                  extra_env=extra_env) as pending:
        yield pending.ready()


class Pending:
    """A started rclone that may not listen yet: `ready()` waits until it does (its log
    line says the port), so what else the caller has to do overlaps rclone's start."""

    def __init__(self, proc: subprocess.Popen[bytes], root: Path | str, *,
                 rclone: str) -> None:
        assert proc.stderr is not None
        self.proc, self.root, self.rclone = proc, root, rclone
        self._output = _rclone_log(proc.stderr)  # reads from now on: no log line is missed
        self._server: RestServer | None = None

    def ready(self) -> RestServer:
        """The listening server (waits for it once, up to START_TIMEOUT); an error with
        rclone's own words when it ended or said nothing."""
        if self._server is None:
            port = _listening(self.proc, self._output, self.root, rclone=self.rclone)
            log.debug("serving %s on 127.0.0.1:%d (rclone pid %d)", self.root, port,
                      self.proc.pid)
            self._server = RestServer(port=port, pid=self.proc.pid)
        return self._server


@contextlib.contextmanager
def starting(root: Path | str, *, user: str, password: Secret, rclone: str = RCLONE,
             extra_env: Mapping[str, Secret] | None = None) -> Iterator[Pending]:
    """rclone started for the block without waiting until it listens (`Pending.ready`);
    stopped when the block ends, whatever ends it. `extra_env`: variables for rclone alone (an S3
    remote's keys: its environment, never its command line)."""
    raise_if_cancelled()
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, htpasswd(user, password))  # far below a pipe's buffer
        os.close(write_fd)
        command = dying_with(argv(root, htpasswd_path=f"/dev/fd/{read_fd}", rclone=rclone))
        # rclone takes any RCLONE_* variable as a flag: none of the admin's may add a user,
        # change the mode or hide the log line that says the port (-q, --log-level).
        # AWS_* too: the S3 backend would take the admin's (e.g. AWS_CA_BUNDLE) over the
        # copy's own settings.
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith(("RCLONE_", "AWS_"))}
        env = {**inherited, **{k: v.reveal() for k, v in (extra_env or {}).items()}}
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, pass_fds=(read_fd,), env=env,
                                start_new_session=True)
    except OSError as exc:
        raise BackupctlError(f"cannot start {rclone} to serve {root}: {exc.strerror or exc}",
                             reason=Reason.REPOSITORY) from None
    finally:
        os.close(read_fd)
    try:
        yield Pending(proc, root, rclone=rclone)
    finally:
        stop(proc)


class PortLog:
    """A child's log read by a thread (from the start: no line is missed): the first port
    `pattern` finds in it (`found` is set then, or when the child ends without one) and the
    last `keep` lines. rclone's "Serving … :PORT/", ssh's "Allocated port PORT"."""

    def __init__(self, stream: IO[bytes], *, pattern: re.Pattern[bytes], name: str,
                 keep: int) -> None:
        self.lines: collections.deque[bytes] = collections.deque(maxlen=keep)
        self.port: int | None = None
        self.found = threading.Event()
        self._pattern = pattern
        threading.Thread(target=self._read, args=(stream,), daemon=True, name=name).start()

    def _read(self, stream: IO[bytes]) -> None:
        with stream:  # until the child ends
            for line in stream:
                self.lines.append(line)
                if self.port is None and (found := self._pattern.search(line)):
                    self.port = int(found.group(1))
                    self.found.set()
        self.found.set()  # ended without a port: the caller reads the lines


def _rclone_log(stream: IO[bytes]) -> PortLog:
    return PortLog(stream, pattern=_LISTENING, name="rclone-log", keep=50)


def _text(log_: PortLog) -> str:
    """rclone's tail for an error message."""
    return tail(b"".join(log_.lines).decode("utf-8", "replace").strip(), 10)


def _listening(proc: subprocess.Popen[bytes], output: PortLog, root: Path | str, *,
               rclone: str) -> int:
    output.found.wait(START_TIMEOUT)
    if output.port is None:
        stop(proc)
        said = _text(output) or ("no output" if proc.poll() is not None
                                 else f"nothing within {START_TIMEOUT:.0f} s")
        hint = " (apt install rclone)" if proc.returncode == 127 else ""
        raise BackupctlError(f"cannot serve the repository {root} with {rclone}{hint}: "
                             f"{said}", reason=Reason.REPOSITORY)
    return output.port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
