"""Pydantic models of the global configuration and job files: the single source of truth.

Every key, default and description of SPEC §3 lives here; `validate`, docs/config.md and the
example jobs are checked against these models.
"""

from __future__ import annotations

import re
import socket
from datetime import tzinfo
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from backupctl.config.dsn import dsn_problem, pg_dump_option_problem
from backupctl.config.notify import JobNotify, Notify
from backupctl.config.served import servable_problem
from backupctl.config.values import (
    JOB_NAME,
    Duration,
    Percent,
    Sample,
    SampleSpec,
    Strict,
    duration_within,
    named,
    repeated,
)
from backupctl.fmt import zone
from backupctl.restic.s3 import location

ORCHESTRATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a host name, or like one


def _program(value: str) -> str:
    """A command on PATH (`restic`) or an absolute path: a relative one would depend on the
    directory backupctl or the SSH session starts in."""
    if not value or any(ord(c) < 32 or c == "\x7f" for c in value):
        raise ValueError("give a command name or an absolute path, without control characters")
    if "/" in value and not value.startswith("/"):
        raise ValueError(f"{value!r} is a relative path: give an absolute path "
                         "(/usr/local/bin/restic) or a command on PATH (restic)")
    return value


Program = Annotated[str, AfterValidator(_program)]


class Host(Strict):
    address: str = Field(min_length=1, description='host name or IP, or "local"')
    port: int = Field(default=22, ge=1, le=65535)
    user: str | None = Field(default=None, min_length=1)
    identity_file: Path | None = None
    restic: Program = Field(default="restic", description="restic on this host (0.14 or "
                            "newer): a command on its PATH or an absolute path")

    @property
    def is_local(self) -> bool:
        return self.address == "local"

    @model_validator(mode="after")
    def _remote_needs_credentials(self) -> Host:
        if not self.is_local:
            missing = [k for k in ("user", "identity_file") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"a remote host needs {' and '.join(missing)}")
        return self

    def display(self) -> str:
        return "local" if self.is_local else f"{self.user}@{self.address}:{self.port}"


class Source(Strict):
    paths: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    before: list[str] = Field(default_factory=list)
    after: list[str] = Field(default_factory=list)

    @field_validator("paths")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"source path {path!r} must be absolute")
        return paths


class Repository(Strict):
    url: str | None = Field(
        default=None, min_length=1, description="the repository as the host reaches it; "
        "omitted: local_url is served to the host over the job's SSH connection (SPEC §15)")
    local_url: str | None = Field(default=None, min_length=1)
    password_file: Path
    init: bool = Field(default=False, description="create the repository on first backup")

    @model_validator(mode="after")
    def _reachable(self) -> Repository:
        if self.url is None:
            if self.local_url is None:
                raise ValueError("give url (the repository as the host reaches it), "
                                 "local_url (a repository on the orchestrator), or both")
            if (problem := servable_problem(self.local_url)) is not None:
                raise ValueError(problem)
        return self

    @property
    def orchestrator_url(self) -> str:
        """The repository as the orchestrator reaches it (verify, copy, forget, check)."""
        url = self.local_url or self.url
        assert url is not None  # _reachable
        return url

    @property
    def served(self) -> bool:
        """Only `local_url`: served to a remote host over SSH for each run (actions.tunnel)."""
        return self.url is None

    @property
    def host_url(self) -> str:
        """The repository as the host's restic reaches it. Without `url`, a remote host
        reaches it only through the tunnel: `actions.tunnel.for_host` hands the run a copy of
        the job whose `url` is the served one (a local job's is `local_url`)."""
        if self.url is None:
            raise RuntimeError("repository.url is unset: serve local_url first "
                               "(actions.tunnel.for_host)")
        return self.url


class Generations(Strict):
    last: int | None = Field(default=None, ge=1)
    hourly: int | None = Field(default=None, ge=1)
    daily: int | None = Field(default=None, ge=1)
    weekly: int | None = Field(default=None, ge=1)
    monthly: int | None = Field(default=None, ge=1)
    yearly: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _at_least_one(self) -> Generations:
        if not self.policy():
            raise ValueError("at least one of last, hourly, daily, weekly, monthly, yearly")
        return self

    def policy(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ObjectLock(Strict):
    """An S3 copy's Object Lock, checked by the probe after every copy (SPEC §14)."""

    mode: Literal["compliance", "governance"]
    min_days: int = Field(ge=1, le=36500, description="the bucket's default retention must "
                          "be at least this, and every object the copy needs stays locked "
                          "at least this long ahead (its lock is extended after every copy)")
    extend_margin_days: int = Field(
        default=7, ge=0, le=3650, description="a lock is extended to min_days plus this "
        "margin, so an old object is extended about once a margin, not after every copy")


class Copy(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    kind: Literal["offline", "immutable"]
    url: str = Field(min_length=1)
    password_file: Path
    max_age: Duration
    seal: Literal["none", "chattr"] = "none"
    s3_credentials_file: Path | None = Field(
        default=None, description="s3: URLs: AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… "
        "lines (optionally AWS_DEFAULT_REGION=…), 0600; they reach restic through its "
        "environment only")
    object_lock: ObjectLock | None = None

    @field_validator("name")
    @classmethod
    def _not_primary(cls, name: str) -> str:
        if name == "primary":
            raise ValueError("'primary' is reserved for the job's own repository")
        return name

    @model_validator(mode="after")
    def _s3(self) -> Copy:
        if (problem := s3_copy_problem(self)) is not None:
            raise ValueError(problem)
        return self

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3:")


def s3_copy_problem(copy: Copy) -> str | None:
    """What an S3 copy's keys must look like together (SPEC §14), or None."""
    if not copy.is_s3:
        if copy.s3_credentials_file is not None or copy.object_lock is not None:
            return "s3_credentials_file and object_lock need an s3: url"
        return None
    try:
        location(copy.url)
    except ValueError as exc:
        return f"url: {exc}"
    if copy.s3_credentials_file is None:
        return ("an s3: copy needs s3_credentials_file (AWS_ACCESS_KEY_ID= and "
                "AWS_SECRET_ACCESS_KEY= lines, 0600)")
    if copy.seal != "none":
        return "seal: chattr needs a local directory; an S3 copy is sealed by object_lock"
    if copy.kind == "immutable" and copy.object_lock is None:
        return ("an immutable s3: copy needs object_lock: {mode: compliance|governance, "
                "min_days: N}: the probe checks the bucket against it")
    return None


class Verify(Strict):
    sample: SampleSpec = Field(default_factory=lambda: Sample(fraction=0.05))
    always: list[str] = Field(default_factory=list)
    canaries: list[str] = Field(default_factory=list)
    read_data_subset: Percent | None = None
    commands: list[str] = Field(default_factory=list)
    rto: Duration | None = None
    # An hour is below any schedule (validate warns); ten years is no window an inspector
    # can use, and a larger number would overflow the clock's arithmetic.
    prove_within: Annotated[Duration, duration_within(3600, 3650 * 86400)] | None = Field(
        default=None, description="every file of the newest snapshot proven by a restore "
        "test within this long (SPEC §12): samples and quick verifies take unproven and "
        "longest-unproven files first, enough per run for the job's schedules")


class Runbook(Strict):
    steps: list[str] = Field(default_factory=list)
    contacts: list[str] = Field(default_factory=list)
    password_holder: str | None = Field(
        default=None, description="who keeps the repository passwords (e.g. the sealed paper "
        "copy in the director's safe); printed in the runbook, never the password itself")


class Schedule(Strict):
    backup: str
    copy_: str | None = Field(default=None, alias="copy")
    verify: str
    verify_full: str | None = Field(
        default=None, description="when to run `verify --mode full` (the whole snapshot "
        "restored and timed against verify.rto, verify.commands, database restores)")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Tripwire(Strict):
    changed_factor: float = Field(default=10.0, gt=1)
    changed_min: int = Field(default=1000, ge=0)


def _pg_dump_option(option: str) -> str:
    if (problem := pg_dump_option_problem(option)) is not None:
        raise ValueError(problem)
    return option


PgDumpOption = Annotated[str, AfterValidator(_pg_dump_option)]
DATABASE_NAME = re.compile(r"^[a-z0-9_-]{1,63}$")


class Database(Strict):
    """One database dumped into the repository and proven by restore tests (SPEC §10)."""

    name: str = Field(pattern=DATABASE_NAME.pattern,
                      description="[a-z0-9_-]+, unique in the job; the dump is JOB/NAME.pgdump")
    # mariadb is the next kind planned (same dump → count → restore contract).
    kind: Literal["postgresql", "sqlite"]
    dsn: str = Field(min_length=1, description="libpq connection string (no password); "
                     "sqlite: the absolute path of the database file")
    options: list[PgDumpOption] = Field(default_factory=list,
                                        description="extra pg_dump arguments")
    checks: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="SQL run on the restored copy; each must return true")

    @field_validator("dsn")
    @classmethod
    def _usable_dsn(cls, dsn: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if isinstance(kind, str) and (problem := dsn_problem(kind, dsn)) is not None:
            raise ValueError(problem)
        return dsn

    @field_validator("options")
    @classmethod
    def _options_are_pg_dump_options(cls, options: list[str], info: ValidationInfo) -> list[str]:
        kind = info.data.get("kind")
        if options and isinstance(kind, str) and kind != "postgresql":
            raise ValueError(f"options are pg_dump arguments; a {kind} database has none")
        return options


class Job(Strict):
    """One job file. The YAML key `job` (the job's name) is `Job.name` in code."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(alias="job", pattern=JOB_NAME.pattern)
    description: str | None = None
    host: Host
    source: Source
    repository: Repository
    generations: Generations
    copies: list[Copy] = Field(default_factory=list)
    verify: Verify = Field(default_factory=Verify)
    runbook: Runbook = Field(default_factory=Runbook)
    schedule: Schedule
    tripwire: Tripwire = Field(default_factory=Tripwire)
    notify: JobNotify = Field(default_factory=JobNotify)
    databases: list[Database] = Field(default_factory=list)

    @field_validator("databases")
    @classmethod
    def _unique_database_names(cls, databases: list[Database]) -> list[Database]:
        if dupes := repeated(d.name for d in databases):
            raise ValueError(f"database names must be unique in the job: {dupes}")
        return databases

    def database_named(self, name: str) -> Database:
        return named(self.databases, name)

    @field_validator("copies")
    @classmethod
    def _unique_copy_names(cls, copies: list[Copy]) -> list[Copy]:
        if dupes := repeated(c.name for c in copies):
            raise ValueError(f"copy names must be unique: {dupes}")
        return copies

    def copy_named(self, name: str) -> Copy:
        return named(self.copies, name)


class GlobalConfig(Strict):
    jobs_dir: Path
    state_dir: Path
    scratch_dir: Path
    # A restored dump is hostile input (SPEC 10a): its throwaway server runs as this user.
    restore_user: str = Field(
        default="backupctl-restore", pattern=r"^[a-z_][a-z0-9_-]{0,31}$",
        description="the unprivileged system user that runs the throwaway PostgreSQL server "
        "of database restore tests; never root, backupctl's own user or postgres")
    known_hosts: Path
    restic: Program = Field(default="restic", description="restic on the orchestrator (0.14 or "
                            "newer): a command on its PATH or an absolute path")
    textfile_dir: Path | None = None
    concurrency: int = Field(default=2, ge=1, le=64)
    database_url: str | None = None
    orchestrator: str | None = Field(
        default=None, min_length=1, max_length=255, pattern=ORCHESTRATOR_NAME.pattern,
        description="this orchestrator's name in runs, leases and evidence; unique among the "
        "orchestrators sharing one database (default: the host name)")
    evidence_retention: Duration = Field(default=6 * 366 * 86400,
                                         description="evidence is kept at least this long")
    command_timeout: Duration = Field(default=6 * 3600,
                                      description="a single remote/restic command may run")
    # A silently dropped network (no reset) must end a run, not hang it until
    # command_timeout: the SSH runner sends keepalives and sets TCP_USER_TIMEOUT.
    ssh_keepalive: Annotated[Duration, duration_within(1, 3600)] = Field(
        default=15, description="an SSH keepalive is sent after this long without traffic")
    ssh_dead_after: Annotated[Duration, duration_within(5, 86400)] = Field(
        default=120, description="an SSH connection whose sent data stays unacknowledged "
        "this long is closed as lost (TCP_USER_TIMEOUT)")
    evidence_key: Path = Field(
        default=Path("/etc/backupctl/evidence.key"),
        description="Ed25519 key that signs every evidence record (made by `backupctl "
        "evidence init-key`; 0600, outside the state database); its public key is "
        "evidence_key + .pub")
    evidence_trusted_keys: list[Path] = Field(
        default_factory=list,
        description="public keys (PEM files) of the other orchestrators sharing the state "
        "database: their signed evidence records are accepted; this orchestrator's own "
        "public key is always trusted")
    evidence_anchor_file: Path | None = Field(
        default=None, description="append the evidence chain's head (seq and hash) here "
        "after every run, besides the system log: keep it on another machine or medium")
    notify: Notify = Field(default_factory=Notify)
    timezone: str | None = Field(
        default=None, description="IANA time zone (Asia/Tokyo) of every time shown to people: "
        "status, reports, mails, the runbook and the status page; default: this machine's. "
        "Stored times stay UTC")
    web_password_file: Path | None = Field(
        default=None, description="the exporter's status page asks for this password (HTTP "
        "basic auth, any user name); a private file (0600) holding one line")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str | None) -> str | None:
        try:
            zone(name)
        except ZoneInfoNotFoundError:
            raise ValueError(f"unknown time zone {name!r}: use an IANA name such as "
                             "Asia/Tokyo (timedatectl list-timezones)") from None
        return name

    @property
    def tz(self) -> tzinfo:
        """The zone of every time shown to people (stored times stay UTC)."""
        return zone(self.timezone)

    @field_validator("restore_user")
    @classmethod
    def _unprivileged(cls, name: str) -> str:
        if name in ("root", "postgres"):
            raise ValueError(f"{name!r} would run restored dumps with its privileges: use a "
                             "dedicated system user such as backupctl-restore")
        return name

    @property
    def effective_orchestrator(self) -> str:
        return self.orchestrator or socket.gethostname()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'state.db'}"
