"""Pydantic models of the global configuration and job files: the single source of truth.

Every key, default and description of SPEC §3 lives here; `validate`, docs/config.md and the
example jobs are checked against these models.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ORCHESTRATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a host name, or like one
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")


def parse_duration(value: object) -> int:
    """`30s`, `15m`, `2h`, `7d` → seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match and int(match.group(1)) > 0:
            return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(f"invalid duration {value!r}: use a positive number with s, m, h or d "
                     "(e.g. 30s, 15m, 2h, 7d)")


def format_duration(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def parse_percent(value: object) -> float:
    """`5%` → 0.05 (0 < p ≤ 100)."""
    if isinstance(value, str):
        match = _PERCENT.match(value.strip())
        if match and 0 < float(match.group(1)) <= 100:
            return float(match.group(1)) / 100
    raise ValueError(f"invalid percentage {value!r}: use a number above 0 and at most 100 "
                     "followed by % (e.g. 5%)")


Duration = Annotated[int, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
Percent = Annotated[float, BeforeValidator(parse_percent)]


class Sample(BaseModel):
    """How many files a backup hashes for verification: a share, a count, or all."""

    model_config = ConfigDict(frozen=True)
    fraction: float | None = None
    count: int | None = None

    def size(self, total: int) -> int:
        if self.count is not None:
            return min(self.count, total)
        fraction = 1.0 if self.fraction is None else self.fraction
        return min(total, max(1, round(total * fraction))) if total else 0


def parse_sample(value: object) -> Sample:
    if isinstance(value, Sample):
        return value
    if value == "all":
        return Sample(fraction=1.0)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a sample count cannot be negative")
        return Sample(count=value)
    if isinstance(value, str):
        return Sample(fraction=parse_percent(value))
    raise ValueError(f"invalid sample {value!r}: use a percentage (5%), a count (200) or all")


def _sample_out(sample: Sample) -> str | int:
    if sample.count is not None:
        return sample.count
    return "all" if sample.fraction == 1.0 else f"{(sample.fraction or 0) * 100:g}%"


SampleSpec = Annotated[Sample, BeforeValidator(parse_sample), PlainSerializer(_sample_out)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Host(Strict):
    address: str = Field(min_length=1, description='host name or IP, or "local"')
    port: int = Field(default=22, ge=1, le=65535)
    user: str | None = Field(default=None, min_length=1)
    identity_file: Path | None = None

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
    url: str = Field(min_length=1)
    local_url: str | None = None
    password_file: Path
    init: bool = Field(default=False, description="create the repository on first backup")

    @property
    def orchestrator_url(self) -> str:
        """The repository as the orchestrator reaches it (verify, copy, forget, check)."""
        return self.local_url or self.url


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


class Copy(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    kind: Literal["offline", "immutable"]
    url: str = Field(min_length=1)
    password_file: Path
    max_age: Duration
    seal: Literal["none", "chattr"] = "none"

    @field_validator("name")
    @classmethod
    def _not_primary(cls, name: str) -> str:
        if name == "primary":
            raise ValueError("'primary' is reserved for the job's own repository")
        return name


class Verify(Strict):
    sample: SampleSpec = Field(default_factory=lambda: Sample(fraction=0.05))
    always: list[str] = Field(default_factory=list)
    canaries: list[str] = Field(default_factory=list)
    read_data_subset: Percent | None = None
    commands: list[str] = Field(default_factory=list)
    rto: Duration | None = None


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

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Tripwire(Strict):
    changed_factor: float = Field(default=10.0, gt=1)
    changed_min: int = Field(default=1000, ge=0)


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

    @field_validator("copies")
    @classmethod
    def _unique_copy_names(cls, copies: list[Copy]) -> list[Copy]:
        names = [c.name for c in copies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"copy names must be unique: {', '.join(dupes)}")
        return copies

    def copy_named(self, name: str) -> Copy:
        for copy in self.copies:
            if copy.name == name:
                return copy
        raise KeyError(name)


class GlobalConfig(Strict):
    jobs_dir: Path
    state_dir: Path
    scratch_dir: Path
    known_hosts: Path
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

    @property
    def effective_orchestrator(self) -> str:
        return self.orchestrator or socket.gethostname()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'state.db'}"
