"""The operating-system user that runs the throwaway PostgreSQL server (SPEC §10a).

A dump comes from a server that may be in an attacker's hands, and restoring it runs its
functions, triggers and constraints. The throwaway server therefore runs as a dedicated
unprivileged system user (`restore_user`, default `backupctl-restore`): never root (the
orchestrator holds every repository password, the evidence key and the SSH identities),
never the user running backupctl (the same secrets) and never `postgres` (the owner of the
orchestrator's own PostgreSQL, whose files would be handed over).

Programs run as that user through `runuser -u USER --` when backupctl is root (util-linux,
always there, no password and no sudoers policy involved), else through
`sudo -n -u USER --` (`-n`: a missing sudoers rule fails at once instead of prompting a
timer that nobody answers). `require()` checks all of it before anything is restored: the
user exists and is none of the above, sudo lets backupctl act as it, and it can pass through
`scratch_dir` and every parent; each problem is a UsageError (exit 2) that names the user or
directory and the command to fix it. It reads no secret of backupctl's: those are refused
unless they are 0600 files of backupctl's own user (secrets.private_file_problem), and the
restore user is neither that user nor root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from backupctl.errors import UsageError
from backupctl.execute import Runner

DEFAULT_USER = "backupctl-restore"
SYSTEM_POSTGRES = "postgres"
_NOTHING = "; nothing was restored"


def create_command(name: str) -> str:
    return f"useradd --system --no-create-home --shell /usr/sbin/nologin {name}"


def sudoers_line(name: str) -> str:
    """What lets the user running backupctl act as the restore user (never the reverse)."""
    return f"{_me()} ALL=({name}) NOPASSWD: ALL"


def _me() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"#{os.geteuid()}"  # sudoers' way of naming a user by uid


@dataclass(frozen=True)
class ServerUser:
    """The restore user: who it is and how to run a program as it."""

    name: str
    uid: int
    gid: int
    groups: frozenset[int]

    @property
    def prefix(self) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", self.name, "--"]
        return ["sudo", "-n", "-u", self.name, "--"]

    def may(self, info: os.stat_result, bits: int) -> bool:
        """Would this user get `bits` (4 read, 1 search) on that inode by its mode? (ACLs aside:
        the probe in `require` runs as the user and has the last word.)"""
        if info.st_uid == self.uid:
            return bool(info.st_mode & (bits << 6))
        if info.st_gid in self.groups:
            return bool(info.st_mode & (bits << 3))
        return bool(info.st_mode & bits)


def lookup(name: str) -> ServerUser:
    """The restore user, or a UsageError saying how to create it or why it is refused."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise UsageError(
            f"restore_user {name!r} does not exist on this orchestrator: full restore tests "
            "of PostgreSQL dumps run the throwaway server as this unprivileged system user "
            "(a dump is hostile input). Create it (as root): "
            f"{create_command(name)}{_NOTHING}") from None
    why = None
    if entry.pw_uid == 0:
        why = "is root"
    elif entry.pw_uid == os.geteuid():
        why = "is the user running backupctl, who can read every secret"
    elif entry.pw_uid in _system_postgres_uids():
        why = "owns the orchestrator's own PostgreSQL"
    if why:
        raise UsageError(
            f"restore_user {name!r} {why}: a restored dump's code would run with its "
            f"privileges. Set restore_user to a dedicated system user, e.g. {DEFAULT_USER} "
            f"({create_command(DEFAULT_USER)}){_NOTHING}")
    groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def _system_postgres_uids() -> set[int]:
    uids = set()
    with contextlib.suppress(KeyError):
        uids.add(pwd.getpwnam(SYSTEM_POSTGRES).pw_uid)
    with contextlib.suppress(OSError):
        uids.add(Path("/var/lib/postgresql").stat().st_uid)
    return uids - {0}


def blocked(path: Path, user: ServerUser) -> tuple[Path, os.stat_result] | None:
    """The first directory on the way to `path` (itself included) that `user` cannot pass
    through, by its mode; symbolic links are followed as the kernel would."""
    real = Path(os.path.realpath(path))
    for directory in [*reversed(real.parents), real]:
        try:
            info = directory.stat()
        except FileNotFoundError:
            return None  # made later, by backupctl, below directories already checked
        if not user.may(info, 1):
            return directory, info
    return None


def require(name: str, *, scratch_dir: Path, runner: Runner) -> ServerUser:
    """Everything a throwaway server needs of its user, checked before anything is restored."""
    user = lookup(name)
    if os.geteuid() != 0:
        probe = runner.run([*user.prefix, "true"], timeout=60)
        if not probe.ok:
            raise UsageError(
                f"backupctl runs as {_me()!r} and may not run "
                f"programs as restore_user {name!r} through sudo without a password "
                f"(sudo -n -u {name} -- true: exit {probe.returncode}). Install sudo and add "
                f"to /etc/sudoers.d/backupctl: {sudoers_line(name)}{_NOTHING}")
    if (stuck := blocked(scratch_dir, user)) is not None:
        directory, info = stuck
        what = "scratch_dir" if directory == Path(os.path.realpath(scratch_dir)) \
            else f"a parent of scratch_dir {scratch_dir}"
        raise UsageError(
            f"restore_user {name!r} cannot pass through {directory} ({what}, mode "
            f"{stat.S_IMODE(info.st_mode):04o}, owner uid {info.st_uid}): the throwaway "
            "PostgreSQL server runs as that user inside scratch_dir. Run: chmod o+x "
            f"{directory} (others may pass through, not list), or move scratch_dir"
            f"{_NOTHING}")
    probe = runner.run([*user.prefix, "test", "-x", str(scratch_dir)], timeout=60)
    if not probe.ok:
        raise UsageError(
            f"restore_user {name!r} cannot pass through scratch_dir {scratch_dir} although "
            "the modes allow it (an ACL or a security module?): let it pass through, or move "
            f"scratch_dir{_NOTHING}")
    return user
