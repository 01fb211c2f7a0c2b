"""Where a recovery brings the data: `local:/ABS/DIR` or `ssh://[USER@]HOST[:PORT]/ABS/DIR`.

Parsed strictly (a usage error names what is wrong, nothing runs), then checked before
anything is restored: the host key must already be trusted (`backupctl trust TARGET`), the
directory must be new or empty unless `--overwrite`, and the job's own source host and paths
are refused unless `--overwrite` (restoring there would write over live data).
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from backupctl.config.schema import Job
from backupctl.errors import UsageError
from backupctl.execute import Runner, program
from backupctl.execute.local import LocalRunner
from backupctl.restic import versions
from backupctl.restic.commands import RESTIC

FORMS = "local:/ABS/DIR or ssh://[USER@]HOST[:PORT]/ABS/DIR"
_SSH = re.compile(r"^ssh://(?:(?P<user>[^@/:\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^@/:\[\]\s]+)"
                  r"(?::(?P<port>[^/]*))?(?P<path>/.*)?$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^[0-9A-Fa-f:.]+$")
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$")


@dataclass(frozen=True)
class Target:
    """A parsed TARGET; `user` None for local (and for ssh without USER@ until resolved)."""

    kind: str  # local | ssh
    path: str  # absolute, normalised
    host: str = "local"
    port: int = 22
    user: str | None = None

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    def display(self) -> str:
        """The target as written back (no credential can be in it)."""
        if self.is_local:
            return f"local:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"ssh://{user}{host}:{self.port}{self.path}"

    def root(self, snapshot_path: str) -> str:
        """Where a snapshot's absolute path lands on the target."""
        return posixpath.join(self.path, snapshot_path.lstrip("/")) if snapshot_path != "/" \
            else self.path


def _bad(text: str, what: str) -> UsageError:
    return UsageError(f"--to {text!r}: {what}; give {FORMS}")


def _directory(text: str, path: str | None) -> str:
    if not path or not path.startswith("/"):
        raise _bad(text, "the directory must be an absolute path")
    if "\x00" in path or "\n" in path:
        raise _bad(text, "the directory holds a NUL or newline")
    parts = path.split("/")
    if ".." in parts:
        raise _bad(text, "the directory may not contain `..`")
    return posixpath.normpath(path) if path != "/" else "/"


def parse(text: str) -> Target:
    """`local:/DIR` or `ssh://[USER@]HOST[:PORT]/DIR`; anything else is a usage error."""
    if text.startswith("local:"):
        return Target("local", _directory(text, text.removeprefix("local:")))
    if not text.startswith("ssh://"):
        raise _bad(text, "unknown form")
    found = _SSH.match(text)
    if found is None:
        raise _bad(text, "not an ssh:// URL")
    host = found["host"].strip("[]")
    if not _HOST.match(host):
        raise _bad(text, f"{host!r} is not a host name or address")
    user = found["user"]
    if user is not None and not _USER.match(user):
        raise _bad(text, f"{user!r} is not a user name")
    port = 22
    if found["port"] is not None:
        if not found["port"].isdigit() or not 1 <= int(found["port"]) <= 65535:
            raise _bad(text, f"port {found['port']!r} is not a number from 1 to 65535")
        port = int(found["port"])
    return Target("ssh", _directory(text, found["path"]), host=host, port=port, user=user)


def resolve(target: Target, job: Job, *, identity: Path | None) -> tuple[Target, Path | None]:
    """The ssh user (default the job's) and identity file (default the job's); a usage error
    when either is unknown."""
    if target.is_local:
        return target, None
    user = target.user or job.host.user
    key = identity or job.host.identity_file
    if user is None:
        raise UsageError(f"{job.name}: --to {target.display()}: no user; write "
                         "ssh://USER@HOST/DIR (the job's host gives none)")
    if key is None:
        raise UsageError(f"{job.name}: --to {target.display()}: no SSH key; pass --identity "
                         "FILE (the job's host gives none)")
    if not key.is_file():
        raise UsageError(f"{job.name}: --identity {key} is not a readable file")
    return Target(target.kind, target.path, target.host, target.port, user), key


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def live_source(target: Target, job: Job) -> list[str]:
    """The job's source paths the target would write over (same host; target equal to,
    inside or above a source path: restic puts /SRC under TARGET/SRC)."""
    same = (job.host.is_local and target.is_local) or (
        not job.host.is_local and not target.is_local and target.host == job.host.address
        and target.port == job.host.port)
    if not same:
        return []
    return [p for p in job.source.paths
            if _overlaps(target.path, p) or _overlaps(target.root(p), p)]


# What the target's directory looks like; run as `python3 -I -c` (the path is data on stdin).
PROBE = r"""
import json, os, shutil, sys
path = sys.stdin.read()
out = {"exists": os.path.lexists(path), "dir": os.path.isdir(path) and not os.path.islink(path)}
if out["dir"]:
    with os.scandir(path) as it:
        out["empty"] = next(it, None) is None
    out["free"] = shutil.disk_usage(path).free
else:
    parent = path
    while parent != "/" and not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    out["free"] = shutil.disk_usage(parent).free
restic = shutil.which(sys.argv[1])
out["restic"] = restic is not None
if restic is not None:
    import re, subprocess
    try:
        said = subprocess.run([restic, "version"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=60)
        found = re.match(rb"restic (\d+\.\d+(?:\.\d+)?)", said.stdout)
        out["restic_version"] = found.group(1).decode() if found else None
    except (OSError, subprocess.SubprocessError):
        out["restic_version"] = None
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Probed:
    exists: bool
    is_dir: bool
    empty: bool
    free: int
    restic: bool
    restic_version: str | None = None  # `restic version` there (None: it did not say)


def probe(runner: Runner, target: Target, *, job: str, timeout: float) -> Probed:
    """The target directory's state and whether restic is installed there."""
    result = runner.run(["python3", "-I", "-c", PROBE, program(runner, RESTIC)],
                        stdin=target.path.encode(), timeout=timeout)
    if not result.ok:
        hint = " (python3 is required on the target)" if result.returncode == 127 else ""
        raise UsageError(f"{job}: cannot look at {target.display()}{hint} {result.describe()}")
    data = json.loads(result.stdout)
    return Probed(bool(data["exists"]), bool(data["dir"]), bool(data.get("empty", True)),
                  int(data["free"]), bool(data["restic"]), data.get("restic_version"))


def refuse(probed: Probed, target: Target, job: Job, *, overwrite: bool,
           needed: int) -> None:
    """Every refusal that must come before anything runs (exit 2)."""
    name, shown = job.name, target.display()
    if probed.exists and not probed.is_dir:
        raise UsageError(f"{name}: --to {shown} exists and is not a directory; nothing was run")
    if probed.exists and not probed.empty and not overwrite:
        raise UsageError(f"{name}: --to {shown} is not empty; restore into a new or empty "
                         "directory, or pass --overwrite to write over what is there "
                         "(nothing was run)")
    if not probed.restic:
        raise UsageError(f"{name}: restic is not installed on {shown} (apt install restic "
                         "there); nothing was run")
    if probed.restic_version and not versions.at_least(probed.restic_version,
                                                       versions.MINIMUM):
        raise UsageError(f"{name}: restic {probed.restic_version} on {shown} is too old: the "
                         f"recovery needs restic {'.'.join(map(str, versions.MINIMUM))} or "
                         "newer there (Debian 12 ships 0.14, Debian 13 0.18); install a "
                         "newer one first; nothing was run")
    if probed.free < needed:
        raise UsageError(f"{name}: {shown} has {probed.free} bytes free, the restore needs "
                         f"{needed}; nothing was run")


def refuse_live(target: Target, job: Job, *, overwrite: bool) -> None:
    live = live_source(target, job)
    if live and not overwrite:
        raise UsageError(f"{job.name}: --to {target.display()} is the job's own source host "
                         f"and would write over its live source path(s) {', '.join(live)}; "
                         "pass --overwrite only if that is what you mean (nothing was run)")


def local_runner() -> Runner:
    return LocalRunner()


def require_trusted(runner: Runner, target: Target, *, known_hosts: Path, job: str) -> None:
    """Connect `runner`; the target's host key must already be in known_hosts (never
    trusted on first use). Checked on the runner's own connection: one SSH handshake."""
    from backupctl.execute.ssh import (  # paramiko: only ssh targets pay its import
        ChangedHostKey,
        SshRunner,
        UnknownHostKey,
        fingerprint,
        known_hosts_name,
    )

    assert isinstance(runner, SshRunner)
    name = known_hosts_name(target.host, target.port)
    hint = (f"compare it with the fingerprint the replacement server shows on its console "
            f"(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); only if they match, run: "
            f"backupctl trust {target.display()}")
    try:
        runner.connect()
    except UnknownHostKey as exc:
        raise UsageError(f"{job}: the host key of {runner.host} is not trusted "
                         f"({exc.offered.get_name()} {fingerprint(exc.offered)}; {known_hosts} "
                         f"has no key for {name}); {hint} (nothing was run)") from None
    except ChangedHostKey as exc:
        raise UsageError(f"{job}: the host key of {runner.host} CHANGED: it offers "
                         f"{exc.offered.get_name()} {fingerprint(exc.offered)}, {known_hosts} "
                         f"expects {fingerprint(exc.expected)}. This can be an attack; if the "
                         f"server was reinstalled, {hint} (nothing was run)") from None


def ssh_runner(target: Target, *, job: str, identity: Path, known_hosts: Path,
               keepalive: int, dead_after: int) -> Runner:
    from backupctl.execute.ssh import SshRunner

    assert target.user is not None
    return SshRunner(job=job, address=target.host, port=target.port, user=target.user,
                     identity_file=identity, known_hosts=known_hosts, keepalive=keepalive,
                     dead_after=dead_after)
