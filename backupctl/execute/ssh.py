"""SshRunner: commands on a server over SSH (paramiko), host keys strictly checked.

Unknown or changed host keys are refused (never trust on first use; `backupctl trust` is
the explicit way to add a key). Every argv element is shell-quoted. A secret reaches the
remote process on its stdin (`/dev/stdin`), never on its command line or disk.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import paramiko
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from backupctl.errors import ConnectError, HostKeyError, Reason, UsageError
from backupctl.execute import (
    Arg,
    Result,
    SecretFile,
    StderrWatch,
    StdoutSink,
    display,
    env_words,
    openssh,
    raise_if_cancelled,
    running,
    split_env,
    stderr_text,
)
from backupctl.execute.forward import LOOPBACK, Bridges

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(address: str, port: int) -> str:
    """The host as known_hosts writes it; messages say `user@host:port` (`connection`) and
    use this form only where they quote known_hosts."""
    return address if port == 22 else f"[{address}]:{port}"


def connection(user: str | None, address: str, port: int) -> str:
    """How every message names an SSH connection: `user@host:port`."""
    return f"{user}@{address}:{port}" if user else f"{address}:{port}"


class UnknownHostKey(HostKeyError):
    """The server's key is not in known_hosts; `offered` is the key it showed."""

    def __init__(self, message: str, *, offered: paramiko.PKey) -> None:
        super().__init__(message)
        self.offered = offered


class ChangedHostKey(HostKeyError):
    """known_hosts holds another key of that type for the server."""

    def __init__(self, message: str, *, offered: paramiko.PKey,
                 expected: paramiko.PKey) -> None:
        super().__init__(message)
        self.offered, self.expected = offered, expected


class _Refuse(paramiko.MissingHostKeyPolicy):
    """Like RejectPolicy, but the refusal says which key was offered and how to trust it."""

    def __init__(self, job: str, known_hosts: Path, host: str) -> None:
        self.job, self.known_hosts, self.host = job, known_hosts, host

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        raise UnknownHostKey(
            f"{self.job}: host key of {self.host} is unknown ({key.get_name()} "
            f"{fingerprint(key)}; {self.known_hosts} has no key for {hostname}); refusing to "
            "connect. Compare "
            "this fingerprint with the one the server itself shows (on its console: "
            "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), by a channel an attacker on "
            f"this network cannot change; only if they match, run: backupctl trust {self.job}",
            offered=key)


class _Transport(paramiko.Transport):
    """AES-GCM first (CTR with HMAC-SHA2 the fallback): an AEAD needs no separate MAC pass.
    Every byte of a repository served over the connection (a recovery, a served backup) is a
    packet here: one channel moved ~110 MiB/s with aes128-ctr + hmac-sha2-256, ~140 with GCM."""

    # paramiko's own list without CBC and 3DES (every OpenSSH since 2003 offers CTR)
    _preferred_ciphers = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr",
                          "aes192-ctr", "aes256-ctr")


_TRANSIENT = (socket.timeout, ConnectionRefusedError, ConnectionResetError,
              paramiko.ssh_exception.NoValidConnectionsError, EOFError)


class SshRunner:
    """One SSH connection to one host; commands run as separate channels."""

    def __init__(self, *, job: str, address: str, port: int, user: str, identity_file: Path,
                 known_hosts: Path, keepalive: int, dead_after: int, connect_attempts: int = 3,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """`keepalive`, `dead_after`: ssh_keepalive, ssh_dead_after (`_detect_dead_peer`)."""
        self.job, self.host = job, connection(user, address, port)
        self._address, self._port, self._user = address, port, user
        self._identity, self._known_hosts = identity_file, known_hosts
        self._attempts, self.keepalive, self.dead_after = connect_attempts, keepalive, dead_after
        self._sleep, self.connect_attempts_made = sleep, 0
        self._client: paramiko.SSHClient | None = None
        self._connecting = threading.Lock()  # commands from several threads: one connection

    def _connect(self) -> paramiko.SSHClient:
        with self._connecting:
            return self._connected()

    def _connected(self) -> paramiko.SSHClient:
        if self._client is not None:
            transport = self._client.get_transport()
            if transport is not None and transport.is_active():
                return self._client
            raise ConnectError(f"{self.job}: connection to {self.host} was lost")

        def warn(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome is not None else None
            log.warning("%s: connecting to %s failed (%s); attempt %d of %d", self.job,
                        self.host, failure, state.attempt_number, self._attempts)

        # Only network errors that may pass are retried; a host key or authentication
        # failure is final at once.
        @retry(retry=retry_if_exception_type(_TRANSIENT), stop=stop_after_attempt(self._attempts),
               wait=wait_exponential(multiplier=0.5, max=8), reraise=True, sleep=self._sleep,
               before_sleep=warn)
        def attempt() -> paramiko.SSHClient:
            self.connect_attempts_made += 1
            client = paramiko.SSHClient()
            if self._known_hosts.exists():
                client.load_host_keys(str(self._known_hosts))
            client.set_missing_host_key_policy(_Refuse(self.job, self._known_hosts, self.host))
            try:
                client.connect(self._address, port=self._port, username=self._user,
                               key_filename=str(self._identity), allow_agent=False,
                               look_for_keys=False, timeout=CONNECT_TIMEOUT,
                               banner_timeout=CONNECT_TIMEOUT, auth_timeout=CONNECT_TIMEOUT,
                               transport_factory=_Transport)  # type: ignore[arg-type]  # gss_*
            except BaseException:
                client.close()
                raise
            _detect_dead_peer(client, keepalive=self.keepalive, dead_after=self.dead_after)
            return client

        try:
            self._client = attempt()
        except HostKeyError:
            raise
        except paramiko.BadHostKeyException as exc:
            raise ChangedHostKey(
                f"{self.job}: host key of {self.host} CHANGED: the server offered "
                f"{exc.key.get_name()} {fingerprint(exc.key)} but {self._known_hosts} expects "
                f"{fingerprint(exc.expected_key)} for "
                f"{known_hosts_name(self._address, self._port)}. This can be an attack; "
                "refusing to connect. If the server was reinstalled, check the new fingerprint "
                "on its "
                f"console and run: backupctl trust {self.job}", offered=exc.key,
                expected=exc.expected_key) from None
        except paramiko.AuthenticationException as exc:
            raise ConnectError(f"{self.job}: authentication as {self._user} on {self.host} "
                               f"with {self._identity} failed: {exc}") from None
        except (OSError, paramiko.SSHException, EOFError) as exc:
            tries = (f" (tried {self.connect_attempts_made} times)"
                     if self.connect_attempts_made > 1 else "")
            raise ConnectError(f"{self.job}: cannot connect to {self.host}"
                               f"{tries}: {exc or type(exc).__name__}. Check that "
                               f"the server is up and sshd listens on port {self._port}") \
                from None
        return self._client

    def connect(self) -> None:
        """Connect now (else the first command does): the host key is checked here."""
        self._connect()

    def run(self, argv: Sequence[Arg], *, stdin: bytes | None = None,
            timeout: float | None = None, stdout_sink: StdoutSink | None = None,
            env: dict[str, str] | None = None,
            stderr_watch: StderrWatch | None = None) -> Result:
        if env:
            raise UsageError("environment variables are not sent over SSH (they would be "
                             "visible on the remote command line)")
        command, stdin = remote_command(argv, stdin)
        return self._exec(command, display(argv), stdin=stdin, timeout=timeout,
                          stdout_sink=stdout_sink, stderr_watch=stderr_watch)

    def shell(self, command: str, *, timeout: float | None = None) -> Result:
        return self.run(["sh", "-c", command], timeout=timeout)

    def _exec(self, command: str, shown: str, *, stdin: bytes | None, timeout: float | None,
              stdout_sink: StdoutSink | None, stderr_watch: StderrWatch | None = None) -> Result:
        client = self._connect()
        transport = client.get_transport()
        assert transport is not None
        log.debug("run on %s: %s", self.host, shown)
        started = time.monotonic()
        try:
            channel = transport.open_session(timeout=CONNECT_TIMEOUT)
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectError(f"{self.job}: cannot run a command on {self.host}: {exc}") from None
        out: list[bytes] = []
        err: list[bytes] = []
        stop = threading.Event()  # set when stderr_watch says so; the pump closes the channel

        def watched(chunk: bytes) -> None:
            err.append(chunk)
            if stderr_watch is not None and not stop.is_set() and stderr_watch(chunk):
                stop.set()

        threads = [threading.Thread(target=_read_stderr, args=(channel, watched), daemon=True),
                   threading.Thread(target=_write_stdin, args=(channel, stdin), daemon=True)]
        for t in threads:
            t.start()
        deadline = None if timeout is None else started + timeout
        try:
            with running(channel.close):
                timed_out = _pump(channel, transport, deadline,
                                  stdout_sink or out.append, stop)
        finally:
            if not channel.exit_status_ready():
                channel.close()
            for t in threads:
                t.join(timeout=5)
        raise_if_cancelled()
        # paramiko reports -1 when the channel closed without an exit status: with the
        # transport gone too, the connection was lost (not a command failure to describe).
        stopped = stop.is_set() and not timed_out
        lost = not timed_out and not stopped and (not channel.exit_status_ready() or (
            channel.recv_exit_status() == -1 and not transport.is_active()))
        if lost:
            channel.close()
            raise ConnectError(f"{self.job}: connection to {self.host} was lost while running "
                               f"`{shown}`")
        code = -1 if timed_out or stopped else channel.recv_exit_status()
        channel.close()
        return Result(shown, code, b"".join(out), stderr_text(b"".join(err)),
                      time.monotonic() - started, timed_out, self.host, stopped)

    @contextlib.contextmanager
    def forward_remote(self, local_port: int) -> Iterator[int]:
        """127.0.0.1:`local_port` here on the server's 127.0.0.1 for the block; yields its port.
        OpenSSH's client when it can (execute.openssh: C speed), else `_forward_here`."""
        self._connect()  # the host key checked here first: its errors are paramiko's
        target = openssh.Target(address=self._address, port=self._port, user=self._user,
                                identity=self._identity, known_hosts=self._known_hosts,
                                keepalive=self.keepalive, dead_after=self.dead_after)
        with openssh.forward(target, local_port=local_port) as port:
            if port is not None:
                yield port
                return
        with self._forward_here(local_port) as port:
            yield port

    @contextlib.contextmanager
    def _forward_here(self, local_port: int) -> Iterator[int]:
        """paramiko's forward on this connection, bound to the server's 127.0.0.1 only: each
        connection to it a channel bridged to a new socket to the local port. On leaving, the
        forward is cancelled (the port refuses) and every bridged connection is closed."""
        transport = self._connect().get_transport()
        assert transport is not None
        bridges = Bridges(local_port)
        try:
            port = transport.request_port_forward(LOOPBACK, 0, handler=bridges.open)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectError(
                f"{self.job}: {self.host} refused to forward a port to the orchestrator "
                f"({exc}): its sshd_config needs `AllowTcpForwarding yes` (or `remote`) for "
                f"{self._user}, and a `restrict` in authorized_keys needs `port-forwarding,` and "
                f"`permitlisten=\"127.0.0.1:*\"`; or give repository.url",
                reason=Reason.CONFIG) from None
        log.debug("forwarding %s 127.0.0.1:%d to 127.0.0.1:%d here", self.host, port, local_port)
        try:
            yield port
        finally:
            bridges.close()
            _cancel_forward(transport, port)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# Runs on the server as `python3 -I -c LAUNCHER ARGV…` when a command needs several secrets
# (or a secret and input data): reads them from stdin (a count, then each as a 6-digit
# length and the bytes), puts each into a pipe, replaces the argument `@backupctl-secret-N@`
# by `/dev/fd/K`, and execs the command, which gets the rest of stdin. No secret is ever on
# a command line, in an environment or on the server's disk.
_LAUNCHER = r"""
import os, sys
def take(n):
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            sys.stderr.write("backupctl: the secrets' stream ended early\n")
            os._exit(125)
        data += chunk
    return data
argv = sys.argv[1:]
for i in range(int(take(2))):
    r, w = os.pipe()
    os.write(w, take(int(take(6))))
    os.close(w)
    os.set_inheritable(r, True)
    argv = ["/dev/fd/%d" % r if a == "@backupctl-secret-%d@" % i else a for a in argv]
try:
    os.execvp(argv[0], argv)
except OSError as exc:
    sys.stderr.write("backupctl: cannot start %s: %s\n" % (argv[0], exc.strerror))
    os._exit(127)
"""


def remote_command(command_argv: Sequence[Arg], stdin: bytes | None) -> tuple[str, bytes | None]:
    """The shell command line and stdin that run argv on the server with its secrets.

    One secret and no input: the secret is the command's stdin (`/dev/stdin`). More secrets,
    or a secret and input: the launcher above (python3 is required on servers anyway). A
    SecretEnv is refused (a remote environment is on the command line); an Env is `env`'s."""
    argv, secret_env = split_env(command_argv)
    if secret_env:
        raise UsageError("environment variables are not sent over SSH (they would be "
                         "visible on the remote command line)")
    argv = [*env_words(command_argv), *argv]
    secrets = [a.secret.reveal().encode() + b"\n" for a in argv if isinstance(a, SecretFile)]
    if not secrets:
        return shlex.join(str(a) for a in argv), stdin
    if len(secrets) == 1 and stdin is None:
        return shlex.join("/dev/stdin" if isinstance(a, SecretFile) else a for a in argv), \
            secrets[0]
    words, index = [], 0
    for arg in argv:
        if isinstance(arg, SecretFile):
            words.append(f"@backupctl-secret-{index}@")
            index += 1
        else:
            words.append(arg)
    header = f"{len(secrets):02d}".encode() + b"".join(
        f"{len(s):06d}".encode() + s for s in secrets)
    return shlex.join(["python3", "-I", "-c", _LAUNCHER, *words]), header + (stdin or b"")


def _detect_dead_peer(client: paramiko.SSHClient, *, keepalive: int, dead_after: int) -> None:
    """A silently dropped network must not hang a run until command_timeout.

    SSH keepalives put data on the wire after `keepalive` seconds without traffic, so even a
    quiet command has data in flight; TCP_USER_TIMEOUT (Linux) closes the connection when
    sent data stays unacknowledged for `dead_after` seconds, which the runner then reports
    as a lost connection: within about keepalive + dead_after of the cut.
    """
    transport = client.get_transport()
    if transport is None:
        return
    transport.set_keepalive(keepalive)
    user_timeout = getattr(socket, "TCP_USER_TIMEOUT", None)
    if user_timeout is not None:
        with contextlib.suppress(OSError):
            transport.sock.setsockopt(socket.IPPROTO_TCP, user_timeout,  # type: ignore[union-attr]
                                      dead_after * 1000)


def _pump(channel: paramiko.Channel, transport: paramiko.Transport, deadline: float | None,
          sink: StdoutSink, stop: threading.Event) -> bool:
    """Move stdout into `sink` until the command ends; True when the deadline passed or
    `stop` was set first (the channel is then closed: the command's output ends)."""
    channel.settimeout(1.0)
    while True:
        if stop.is_set() or (deadline is not None and time.monotonic() > deadline):
            channel.close()
            return not stop.is_set()
        try:
            chunk = channel.recv(65536)
        except TimeoutError:
            if not transport.is_active():
                break
            continue
        if not chunk:
            break
        sink(chunk)
    while not channel.exit_status_ready():
        if not transport.is_active() or (deadline is not None and time.monotonic() > deadline):
            break
        time.sleep(0.05)
    return False


def _read_stderr(channel: paramiko.Channel, sink: StdoutSink) -> None:
    while True:
        try:
            chunk = channel.recv_stderr(65536)
        except TimeoutError:
            if channel.closed or (channel.exit_status_ready() and not channel.recv_stderr_ready()):
                return
            continue
        except (OSError, EOFError):
            return
        if not chunk:
            return
        sink(chunk)


def _write_stdin(channel: paramiko.Channel, data: bytes | None) -> None:
    try:
        if data:
            channel.sendall(data)
        channel.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        pass


# -- remote port forwards (SshRunner._forward_here) ---------------------------------------
def _cancel_forward(transport: paramiko.Transport, port: int) -> None:
    """Cancel the forward, waiting at most CONNECT_TIMEOUT for the server's answer (a dead
    peer must not hold up a run's cleanup; its forward ends with the connection anyway)."""
    def cancel() -> None:
        with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
            transport.cancel_port_forward(LOOPBACK, port)

    thread = threading.Thread(target=cancel, daemon=True, name="ssh-forward-cancel")
    thread.start()
    thread.join(CONNECT_TIMEOUT)
