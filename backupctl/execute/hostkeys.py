"""`backupctl trust`: fetch a server's host key, show its fingerprint, add it to known_hosts.

The only way a key enters known_hosts: explicit, after the admin compared the fingerprint
(or passed the one they expect with --fingerprint).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from backupctl.errors import ConnectError, HostKeyError
from backupctl.execute.ssh import CONNECT_TIMEOUT, connection, fingerprint, known_hosts_name

__all__ = ["OfferedKey", "add", "current", "fetch", "fingerprint"]


@dataclass(frozen=True)
class OfferedKey:
    name: str  # known_hosts host field
    key: paramiko.PKey
    host: str = ""  # the connection, as messages name it (user@host:port)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)

    @property
    def type(self) -> str:
        return self.key.get_name()


def fetch(address: str, port: int, *, user: str | None = None) -> OfferedKey:
    """The host key the server offers (no authentication happens)."""
    host = connection(user, address, port)
    try:
        sock = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise ConnectError(f"cannot connect to {host}: {exc}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise ConnectError(f"cannot read the host key of {host}: {exc}") from None
    finally:
        transport.close()
    return OfferedKey(known_hosts_name(address, port), key, host)


def current(known_hosts: Path, name: str, key_type: str) -> paramiko.PKey | None:
    if not known_hosts.exists():
        return None
    entry = paramiko.HostKeys(str(known_hosts)).lookup(name)
    return entry.get(key_type) if entry is not None else None


def add(known_hosts: Path, offered: OfferedKey, *, expected: str | None) -> None:
    """Write the key (replacing an older key of the same type for that host)."""
    if expected is not None and expected != offered.fingerprint:
        raise HostKeyError(f"{offered.host or offered.name} offers {offered.type} "
                           f"{offered.fingerprint}, not the expected {expected}; nothing was "
                           "trusted")
    keys = paramiko.HostKeys()
    if known_hosts.exists():
        keys.load(str(known_hosts))
    keys.add(offered.name, offered.type, offered.key)
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    tmp = known_hosts.with_name(known_hosts.name + ".tmp")
    keys.save(str(tmp))
    tmp.replace(known_hosts)
