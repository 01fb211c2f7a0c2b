"""argv builders for restic. Passwords are SecretFile placeholders, never strings."""

from __future__ import annotations

from collections.abc import Sequence

from backupctl.execute import Arg, Secret, SecretFile
from backupctl.restic import s3
from backupctl.secrets import display_url, url_password

RESTIC = "restic"
# Tags: a job's file snapshot carries FILES_TAG; each database dump (backupctl.databases)
# carries DATABASE_TAG and `DATABASE_TAG:NAME` instead, never FILES_TAG. `forget --group-by
# host,tags` therefore keeps the generations of the files and of each database apart.
FILES_TAG = "backupctl"
DATABASE_TAG = "backupctl-db"


def is_database(tags: Sequence[str]) -> bool:
    """A database dump's snapshot (not the job's files)."""
    return DATABASE_TAG in tags


def repository(repo: str, *, option: str = "--repo") -> list[Arg]:
    """`--repo URL`; a URL holding a password (rest:http://user:pass@…) goes through a file
    descriptor instead (`--repository-file`), so it is never on a command line (`ps`)."""
    creds = s3.credentials_for(repo) if s3.is_s3(repo) else None
    env: list[Arg] = [creds.env()] if creds is not None else []  # S3 keys: environment only
    if url_password(repo) is None:
        return [option, repo, *env]
    return [option.replace("-repo", "-repository-file"),
            SecretFile(Secret(repo), label=display_url(repo)), *env]


def base(repo: str, password: Secret, *, cache: bool = True) -> list[Arg]:
    argv: list[Arg] = [RESTIC, *repository(repo), "--password-file", SecretFile(password)]
    if not cache:
        # Verification must read what is in the repository, not a local cache of it.
        argv.append("--no-cache")
    return argv


def init(repo: str, password: Secret) -> list[Arg]:
    return [*base(repo, password), "init"]


def backup(repo: str, password: Secret, *, host: str, paths: Sequence[str],
           exclude: Sequence[str], options: Sequence[Arg] = ()) -> list[Arg]:
    """`options`: more of restic's own (`--parent ID`, `--time T`), before the paths."""
    argv = [*base(repo, password), "backup", "--json", "--host", host, "--tag", FILES_TAG]
    for pattern in exclude:
        argv += ["--exclude", pattern]
    return [*argv, *options, "--", *paths]


def forget_snapshots(repo: str, password: Secret, ids: Sequence[str]) -> list[Arg]:
    """`forget ID…`: remove these snapshots (their data goes with the next prune)."""
    return [*base(repo, password), "forget", "--", *ids]


def forget(repo: str, password: Secret, *, host: str, policy: dict[str, int],
           prune: bool = True, group_by: str = "host,tags") -> list[Arg]:
    """`host,tags`: the policy applies to the job's files and to each database's dumps
    separately (their tags differ), so N generations of files keep N of every database."""
    argv = [*base(repo, password), "forget", "--json", "--host", host, "--group-by", group_by]
    for key, count in sorted(policy.items()):
        argv += [f"--keep-{key}", str(count)]
    return [*argv, "--prune"] if prune else argv


def snapshots(repo: str, password: Secret, *, host: str | None = None) -> list[Arg]:
    argv = [*base(repo, password, cache=False), "snapshots", "--json"]
    return [*argv, "--host", host] if host else argv


def ls(repo: str, password: Secret, snapshot: str, *, host: str | None = None,
       tags: Sequence[str] = ()) -> list[Arg]:
    """`host` (and `tags`) narrow `latest` as in `restore`; its first line names the
    snapshot restic chose."""
    argv = [*base(repo, password, cache=False), "ls", "--json"]
    if host:
        argv += ["--host", host]
    for tag in tags:
        argv += ["--tag", tag]
    return [*argv, "--", snapshot]


def dump(repo: str, password: Secret, *, snapshot: str, path: str) -> list[Arg]:
    """One file of a snapshot on stdout (a database dump: `/JOB/NAME.pgdump`)."""
    return [*base(repo, password, cache=False), "dump", "--", snapshot, path]


def escape_glob(path: str) -> str:
    """restic --include takes glob patterns: escape `*?[\\` so a path matches only itself."""
    return "".join("\\" + c if c in "*?[\\" else c for c in path)


def restore(repo: str, password: Secret, *, snapshot: str, target: str,
            include: Sequence[str] | None = None, host: str | None = None,
            tags: Sequence[str] = ()) -> list[Arg]:
    """`host` (and `tags`) narrow `latest` to the job's (file) snapshots."""
    argv = [*base(repo, password, cache=False), "restore", "--target", target]
    if host:
        argv += ["--host", host]
    for tag in tags:
        argv += ["--tag", tag]
    for path in include or ():
        argv += ["--include", escape_glob(path)]
    return [*argv, "--", snapshot]


def check(repo: str, password: Secret, *, read_data_subset: float | None,
          no_lock: bool = False, read_data_group: tuple[int, int] | None = None) -> list[Arg]:
    """`no_lock`: beside a restore of ours (which holds restic's shared lock);
    `read_data_group` (n, t): read pack group n of t (instead of a share)."""
    argv = [*base(repo, password, cache=False), *(["--no-lock"] if no_lock else []), "check"]
    if read_data_group is not None:
        argv.append(f"--read-data-subset={read_data_group[0]}/{read_data_group[1]}")
    elif read_data_subset is not None:
        argv.append(f"--read-data-subset={read_data_subset * 100:g}%")
    return argv


def copy(dest: str, dest_password: Secret, *, source: str, source_password: Secret,
         snapshot_ids: Sequence[str] = (), host: str | None = None) -> list[Arg]:
    """restic 0.14: `-r` is the destination, `--from-repo` the source."""
    argv: list[Arg] = [RESTIC, *repository(dest), "--password-file", SecretFile(dest_password),
                       "copy", *repository(source, option="--from-repo"),
                       "--from-password-file", SecretFile(source_password)]
    if host:
        argv += ["--host", host]
    return [*argv, *snapshot_ids]


def version() -> list[Arg]:
    return [RESTIC, "version"]


def unlock(repo: str, password: Secret) -> list[Arg]:
    return [*base(repo, password), "unlock"]
