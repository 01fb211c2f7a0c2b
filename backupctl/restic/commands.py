"""argv builders for restic. Passwords are SecretFile placeholders, never strings."""

from __future__ import annotations

from collections.abc import Sequence

from backupctl.execute import Arg, Secret, SecretFile

RESTIC = "restic"


def base(repo: str, password: Secret, *, cache: bool = True) -> list[Arg]:
    argv: list[Arg] = [RESTIC, "--repo", repo, "--password-file", SecretFile(password)]
    if not cache:
        # Verification must read what is in the repository, not a local cache of it.
        argv.append("--no-cache")
    return argv


def init(repo: str, password: Secret) -> list[Arg]:
    return [*base(repo, password), "init"]


def backup(repo: str, password: Secret, *, host: str, paths: Sequence[str],
           exclude: Sequence[str]) -> list[Arg]:
    argv = [*base(repo, password), "backup", "--json", "--host", host, "--tag", "backupctl"]
    for pattern in exclude:
        argv += ["--exclude", pattern]
    return [*argv, "--", *paths]


def forget(repo: str, password: Secret, *, host: str, policy: dict[str, int],
           prune: bool = True) -> list[Arg]:
    argv = [*base(repo, password), "forget", "--json", "--host", host, "--group-by", "host"]
    for key, count in sorted(policy.items()):
        argv += [f"--keep-{key}", str(count)]
    return [*argv, "--prune"] if prune else argv


def snapshots(repo: str, password: Secret, *, host: str | None = None) -> list[Arg]:
    argv = [*base(repo, password, cache=False), "snapshots", "--json"]
    return [*argv, "--host", host] if host else argv


def ls(repo: str, password: Secret, snapshot: str) -> list[Arg]:
    return [*base(repo, password, cache=False), "ls", "--json", "--", snapshot]


def escape_glob(path: str) -> str:
    """restic --include takes glob patterns: escape `*?[\\` so a path matches only itself."""
    return "".join("\\" + c if c in "*?[\\" else c for c in path)


def restore(repo: str, password: Secret, *, snapshot: str, target: str,
            include: Sequence[str] | None = None, host: str | None = None) -> list[Arg]:
    """`host` narrows `latest` to the job's snapshots."""
    argv = [*base(repo, password, cache=False), "restore", "--target", target]
    if host:
        argv += ["--host", host]
    for path in include or ():
        argv += ["--include", escape_glob(path)]
    return [*argv, "--", snapshot]


def check(repo: str, password: Secret, *, read_data_subset: float | None,
          no_lock: bool = False) -> list[Arg]:
    """`no_lock`: beside a restore of ours (which holds restic's shared lock)."""
    argv = [*base(repo, password, cache=False), *(["--no-lock"] if no_lock else []), "check"]
    if read_data_subset is not None:
        argv.append(f"--read-data-subset={read_data_subset * 100:g}%")
    return argv


def copy(dest: str, dest_password: Secret, *, source: str, source_password: Secret,
         snapshot_ids: Sequence[str] = (), host: str | None = None) -> list[Arg]:
    """restic 0.14: `-r` is the destination, `--from-repo` the source."""
    argv: list[Arg] = [RESTIC, "--repo", dest, "--password-file", SecretFile(dest_password),
                       "copy", "--from-repo", source,
                       "--from-password-file", SecretFile(source_password)]
    if host:
        argv += ["--host", host]
    return [*argv, *snapshot_ids]


def version() -> list[Arg]:
    return [RESTIC, "version"]


def unlock(repo: str, password: Secret) -> list[Arg]:
    return [*base(repo, password), "unlock"]
