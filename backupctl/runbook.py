"""The recovery runbook (復旧手順書) of a job: generated from the job file and the state.

It says where the backups and copies are, on which medium, where the passwords are kept and
who holds them (never a password itself), the exact restore commands with backupctl and
with plain restic (for when backupctl itself is gone), the application steps, the measured
restore times of the last full verify and the last drill, and whom to call. Japanese is the
primary language. Templates (Jinja2, Markdown and HTML) and the strings of each language are
package data under backupctl/templates/runbook/.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from importlib import resources
from pathlib import PurePosixPath

import jinja2
from ruamel.yaml import YAML

from backupctl import __version__, fmt
from backupctl.clock import parse_iso
from backupctl.config.schema import Copy, Database, Job
from backupctl.config.validate import DEFAULT_CONFIG, Config
from backupctl.config.values import format_duration
from backupctl.databases.kinds import KINDS
from backupctl.databases.model import database_tag, stdin_filename
from backupctl.fmt import LANGS, ms_to_seconds
from backupctl.log import mask
from backupctl.restic import s3
from backupctl.restic.commands import FILES_TAG, escape_glob
from backupctl.secrets import display_url
from backupctl.signing import load_public
from backupctl.state import dumps, queries
from backupctl.state.db import Store
from backupctl.state.records import DatabaseProof, DrillDetails, Proof, VerifyDetails, read

FORMATS = ("md", "html")
_TEMPLATES = "templates/runbook"
_RECENT_VERIFIES = 200  # how far back to look for the last *full* verify


@dataclass(frozen=True)
class RepoInfo:
    """One repository of the job, as the runbook presents it."""

    name: str  # primary or the copy's name
    kind: str  # primary | offline | immutable
    url: str
    password_file: str
    max_age: str | None = None
    last_success: str | None = None
    snapshot_id: str | None = None
    media: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    s3: S3Info | None = None


@dataclass(frozen=True)
class S3Info:
    """An S3 Object Lock copy: where it is, whose keys, and how to read it as it was before
    an attack that wrote delete markers (SPEC §14)."""

    bucket: str
    prefix: str
    endpoint: str
    credentials_file: str
    lock: str  # "compliance, 30 day(s)"
    attack_commands: list[tuple[str, str]]  # (command, string key)


_MARKERS = "DeleteMarkers[?LastModified>=`ATTACK-TIME`].[Key,VersionId]"


def _with_keys(credentials: str, command: str) -> str:
    """restic and the aws CLI read S3 keys from the environment: export the file's lines in
    a subshell (shell builtins: the keys never reach a command line)."""
    return f"(set -a; . {shlex.quote(credentials)}; set +a; {command})"


def s3_info(copy: Copy) -> S3Info | None:
    if not copy.is_s3 or copy.s3_credentials_file is None:
        return None
    where = s3.location(copy.url)
    keys = str(copy.s3_credentials_file)
    aws = ["aws", "s3api", "--endpoint-url", where.endpoint]
    listing = shlex.join([*aws, "list-object-versions", "--bucket", where.bucket, "--prefix",
                          where.key(""), "--query", _MARKERS, "--output", "text"])
    remove = shlex.join([*aws, "delete-object", "--bucket", where.bucket])
    lock = copy.object_lock
    return S3Info(where.bucket, where.prefix, where.endpoint, keys,
                  f"{lock.mode}, {lock.min_days} day(s)" if lock else "-", [
        (_with_keys(keys, f"{listing} > delete-markers.txt"), "s3_list_markers"),
        (_with_keys(keys, 'while read -r key version; do ' + remove +
                    ' --key "$key" --version-id "$version"; done < delete-markers.txt'),
         "s3_remove_markers")])


@dataclass(frozen=True)
class Measured:
    """A recorded restore: when, by whom, how long, and the result."""

    finished_at: str
    result: str
    restore_seconds: float | None
    operator: str
    repository: str
    snapshot_id: str | None


@dataclass(frozen=True)
class RunbookData:
    job: Job
    generated_at: str
    repositories: list[RepoInfo]
    backupctl_commands: list[tuple[str, str]]  # (command, what it does: a string key)
    last_backup: str | None
    last_snapshot: str | None
    last_full_verify: Measured | None
    last_drill: Measured | None
    restore_target: str
    version: str = __version__
    evidence_key: str | None = None  # the fingerprint of the evidence signing key
    check_commands: list[str] = field(default_factory=list)
    databases: list[DatabaseInfo] = field(default_factory=list)
    # the worst day: (command, what it does) onto a replacement server (SPEC §11)
    recovery_commands: list[tuple[str, str]] = field(default_factory=list)


def restore_target(job: Job) -> str:
    """Where the printed commands restore to (an example the admin replaces)."""
    return f"/srv/restore/{job.name}"


def recovery_commands(job: Job, *, cli: str, target: str) -> list[tuple[str, str]]:
    """`trust`, `restore --dry-run`, then `restore` onto a replacement server, with the
    job's name, its SSH user and the runbook's restore directory filled in (NEW-SERVER is
    the one word the admin replaces)."""
    to = shlex.quote(f"ssh://{job.host.user or 'root'}@NEW-SERVER{target}")
    restore = f"{cli} restore {job.name} --to {to}"
    commands = [(f"{cli} trust {to}", "rec_trust"), (f"{restore} --dry-run", "rec_dry_run"),
                (f"{restore} --operator NAME", "rec_restore")]
    # the primary encrypted or gone: the same from a copy, the immutable one first
    fallback = sorted(job.copies, key=lambda c: c.kind != "immutable")[:1]
    commands += [(f"{restore} --from {shlex.quote(c.name)} --operator NAME", "rec_from_copy")
                 for c in fallback]
    if job.databases and all(KINDS[d.kind].ONTO_TARGET for d in job.databases):
        dsn = shlex.quote("host=/var/run/postgresql dbname=postgres")
        commands.append((f"{restore} --databases --target-dsn {dsn} --operator NAME",
                         "rec_databases"))
    spare = shlex.quote(f"ssh://{job.host.user or 'root'}@SPARE-SERVER{target}")
    return [*commands, (f"{cli} drill {job.name} --to {spare} --operator NAME",
                        "rec_drill_to")]


def restic_commands(job: Job, *, url: str, password_file: str, target: str) -> list[str]:
    """Plain restic: list, restore the newest snapshot, restore one path, check.

    `--tag backupctl`: the job's files (a database dump's snapshot is newer, tagged
    backupctl-db)."""
    base = ["restic", "--repo", url, "--password-file", password_file]
    one = job.verify.always[0] if job.verify.always else job.source.paths[0]
    latest = ["latest", "--host", job.name, "--tag", FILES_TAG]
    commands = [
        [*base, "snapshots", "--host", job.name],
        [*base, "restore", *latest, "--target", target],
        [*base, "restore", *latest, "--target", target, "--include", escape_glob(one)],
        [*base, "check", "--read-data-subset=5%"],
    ]
    return [shlex.join(c) for c in commands]


@dataclass(frozen=True)
class DatabaseInfo:
    """One of the job's databases: its newest dump, its last proven restore, and the
    restic + pg_restore (or sqlite3) commands that bring it back by hand."""

    name: str
    kind: str
    path: str  # inside the dump's snapshot
    last_dump: str | None = None
    snapshot_id: str | None = None
    tables: int | None = None
    rows: int | None = None
    last_proven: Measured | None = None
    proven_tables: int | None = None
    proven_rows: int | None = None
    commands: list[tuple[str, str]] = field(default_factory=list)  # (command, string key)


def database_commands(job: Job, database: Database, *, path: str, url: str,
                      password_file: str, target: str) -> list[tuple[str, str]]:
    """restic dump of the newest dump into `target`, then the kind's restore commands
    (pg_restore, sqlite3); never a password (restic: --password-file)."""
    base = ["restic", "--repo", url, "--password-file", password_file]
    tag = database_tag(database.name)
    local = f"{target}/{PurePosixPath(path).name}"
    dump = shlex.join([*base, "dump", "--host", job.name, "--tag", tag, "latest", path])
    steps = [(shlex.join([*base, "snapshots", "--host", job.name, "--tag", tag]), "db_list"),
             (f"mkdir -p {shlex.quote(target)} && (umask 077 && {dump} > "
              f"{shlex.quote(local)})", "db_dump")]
    return steps + KINDS[database.kind].restore_commands(database.name, local)


def _local_time(value: str | None, tz: tzinfo) -> str | None:
    """A stored time on the wall clock of `timezone`, to the minute, with the zone's
    abbreviation (`2026-12-08 01:04 JST`)."""
    if not value:
        return None
    try:
        return parse_iso(value).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
    except ValueError:
        return value


def _measured(row: queries.RunRow, tz: tzinfo) -> Measured:
    return Measured(
        finished_at=_local_time(row.finished_at or row.started_at, tz) or "-",
        result="pass" if row.status == "success" else row.status,
        restore_seconds=ms_to_seconds(read(Proof, row.details).restore_ms),
        operator=row.operator, repository=row.repository, snapshot_id=row.snapshot_id)


def _last_full_verify(store: Store, job: Job, tz: tzinfo) -> Measured | None:
    rows = store.query(queries.recent_runs, job.name, "verify", limit=_RECENT_VERIFIES)
    for row in rows:
        if read(VerifyDetails, row.details).mode == "full":
            return _measured(row, tz)
    return None


def _last_proven(store: Store, job: Job, name: str
                 ) -> tuple[queries.RunRow, DatabaseProof] | None:
    """The newest full verify or drill that proved this database's restore."""
    found: list[tuple[queries.RunRow, DatabaseProof]] = []
    for kind, model in (("verify", VerifyDetails), ("drill", DrillDetails)):
        for row in store.query(queries.recent_runs, job.name, kind, limit=_RECENT_VERIFIES):
            proof = next((p for p in read(model, row.details).databases
                          if p.name == name and p.mode == "full" and p.result == "proven"),
                         None)
            if proof is not None:
                found.append((row, proof))
                break
    return max(found, key=lambda f: f[0].id) if found else None


def _databases(store: Store, job: Job, target: str, tz: tzinfo) -> list[DatabaseInfo]:
    out = []
    for database in job.databases:
        dumped = store.query(dumps.newest_database_manifest, job.name, database.name)
        path = dumped.path if dumped else "/" + stdin_filename(
            job.name, database.name, KINDS[database.kind].SUFFIX)
        proven = _last_proven(store, job, database.name)
        out.append(DatabaseInfo(
            name=database.name, kind=database.kind, path=path,
            last_dump=_local_time(dumped.created_at, tz) if dumped else None,
            snapshot_id=dumped.snapshot_id if dumped else None,
            tables=len(dumped.tables) if dumped else None,
            rows=sum(dumped.tables.values()) if dumped else None,
            last_proven=replace(_measured(proven[0], tz), restore_seconds=ms_to_seconds(
                proven[1].restore_ms)) if proven else None,
            proven_tables=proven[1].tables_checked if proven else None,
            proven_rows=proven[1].rows_restored if proven else None,
            commands=database_commands(job, database, path=path,
                                       url=job.repository.orchestrator_url,
                                       password_file=str(job.repository.password_file),
                                       target=target)))
    return out


def _media(store: Store, job: Job, copy: str, tz: tzinfo) -> list[str]:
    found = []
    for row in sorted(store.query(queries.media_of, job.name, copy), key=lambda m: m.label):
        seen = _local_time(row.last_attached, tz)
        found.append(f"{row.label}" + (f" ({seen})" if seen else ""))
    return found


def gather(config: Config, store: Store, job: Job) -> RunbookData:
    """Everything the runbook shows, from the job file and the state database."""
    target = restore_target(job)
    tz = config.settings.tz
    repositories = []
    backup = store.query(queries.last_run, job.name, "backup", status="success")
    repositories.append(RepoInfo(
        name="primary", kind="primary", url=display_url(job.repository.orchestrator_url),
        password_file=str(job.repository.password_file),
        last_success=_local_time(backup.finished_at, tz) if backup else None,
        snapshot_id=backup.snapshot_id if backup else None,
        commands=restic_commands(job, url=display_url(job.repository.orchestrator_url),
                                 password_file=str(job.repository.password_file),
                                 target=target)))
    for copy in job.copies:
        last = store.query(queries.last_run, job.name, "copy", repository=copy.name,
                           status="success")
        repositories.append(RepoInfo(
            name=copy.name, kind=copy.kind, url=display_url(copy.url),
            password_file=str(copy.password_file),
            max_age=format_duration(copy.max_age),
            last_success=_local_time(last.finished_at, tz) if last else None,
            snapshot_id=last.snapshot_id if last else None,
            media=_media(store, job, copy.name, tz) if copy.kind == "offline" else [],
            commands=[_with_keys(str(copy.s3_credentials_file), c) if copy.is_s3 else c
                      for c in restic_commands(job, url=display_url(copy.url),
                                               password_file=str(copy.password_file),
                                               target=target)],
            s3=s3_info(copy)))
    drill = store.query(queries.last_run, job.name, "drill", finished=True)
    name = job.name
    cli = "backupctl"
    if config.path.resolve() != DEFAULT_CONFIG:
        cli += f" -c {shlex.quote(str(config.path.resolve()))}"
    commands = [(f"{cli} status", "cmd_status"),
                (f"{cli} verify {name} --mode full", "cmd_verify_full"),
                *[(f"{cli} verify {name} --mode full --from {c.name}", "cmd_verify_copy")
                  for c in job.copies],
                (f"{cli} drill {name} --operator NAME", "cmd_drill"),
                (f"{cli} drill {name} --operator NAME --target {shlex.quote(target)}",
                 "cmd_drill_target")]
    return RunbookData(
        job=job, generated_at=_local_time(store.now(), tz) or "", repositories=repositories,
        backupctl_commands=commands,
        last_backup=_local_time(backup.finished_at, tz) if backup else None,
        last_snapshot=backup.snapshot_id if backup else None,
        last_full_verify=_last_full_verify(store, job, tz),
        last_drill=_measured(drill, tz) if drill is not None else None,
        restore_target=target, check_commands=list(job.verify.commands),
        recovery_commands=recovery_commands(job, cli=cli, target=target),
        evidence_key=key.fingerprint if (key := load_public(config.settings.evidence_key))
        else None, databases=_databases(store, job, target, tz))


def strings(lang: str) -> dict[str, str]:
    text = resources.files("backupctl").joinpath(_TEMPLATES, "strings.yaml").read_text(
        encoding="utf-8")
    table = YAML(typ="safe").load(text)
    return {key: str(value[lang]) for key, value in table.items()}


def duration(seconds: float | None, lang: str) -> str | None:
    """A measured time as the runbook shows it: short ones with their exact seconds too."""
    if seconds is None:
        return None
    shown = fmt.duration(seconds, lang)
    if 10 <= seconds < 600:
        shown += f"（{seconds:.1f} 秒）" if lang == "ja" else f" ({seconds:.1f} s)"
    return shown


def render(data: RunbookData, *, lang: str = "ja", fmt: str = "md") -> str:
    if lang not in LANGS or fmt not in FORMATS:
        raise ValueError(f"unknown language/format {lang}/{fmt}")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("backupctl", _TEMPLATES),
        autoescape=jinja2.select_autoescape(["html.j2"]), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["duration"] = lambda s: duration(s, lang)
    env.globals["zip"] = zip
    template = env.get_template(f"runbook.{fmt}.j2")
    return template.render(d=data, job=data.job, t=strings(lang), lang=lang)


def runbook(config: Config, store: Store, job: Job, *, lang: str = "ja",
            fmt: str = "md") -> str:
    """The runbook; a password inside a repository URL shows as `***` (it is held where
    runbook.password_holder says, never printed)."""
    return mask(render(gather(config, store, job), lang=lang, fmt=fmt))
