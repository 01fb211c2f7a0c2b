"""Typed run details: what each kind of run records, written and read through one model.

`runs.details` and every evidence record's `details` hold the JSON of one of these models;
actions build them, and metrics, reports, the runbook and `status` read them back with
`parse(kind, text)`. A record holds no floating-point number (durations are integer
milliseconds, ratios decimal strings), so its canonical JSON is the same in every language
and an inspector can recompute its hash with standard tools. Rows written by older versions
(float seconds, `coverage_ratio`) are upgraded when read; unknown keys are ignored.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

# One database's proof has its own module (the model and its rules); a field of `Proof`.
from backupctl.state.database_proof import DatabaseProof as DatabaseProof


class Record(BaseModel):
    # defer_build: a model's validator is built when a run first uses it, not at import;
    # each command uses a few of these models and every command imports them all (issue 25).
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def ms(seconds: float | None) -> int | None:
    """Seconds (as measured) → integer milliseconds (as recorded)."""
    return None if seconds is None else round(seconds * 1000)


def ratio(value: float | None, places: int = 6) -> str | None:
    """A ratio as a fixed decimal string (`0.953125`): exact in JSON, no float."""
    return None if value is None else f"{Decimal(repr(value)):.{places}f}"


def _legacy_seconds(data: Any, pairs: dict[str, str]) -> Any:
    """Old rows stored float seconds under `old`; new ones integer ms under `new`."""
    if isinstance(data, dict):
        data = dict(data)
        for old, new in pairs.items():
            if new not in data and isinstance(data.get(old), int | float):
                data[new] = ms(float(data[old]))
    return data


def over_rto(restore_ms: int | None, rto_seconds: int | None) -> bool | None:
    """The one RTO rule: a measured restore slower than the objective is over it (None: no
    timed restore or no objective, nothing to judge)."""
    if restore_ms is None or rto_seconds is None:
        return None
    return restore_ms > rto_seconds * 1000


def _legacy_ratio(data: Any, old: str, new: str) -> Any:
    if isinstance(data, dict) and new not in data and isinstance(data.get(old), int | float):
        data = {**data, new: ratio(float(data[old]))}
    return data


# -- shared pieces ------------------------------------------------------------------------

class Mismatch(Record):
    """One thing a restore test found wrong (never a name or content it could not read)."""

    path: str
    expected: str | None = None
    got: str | None = None
    reason: str  # missing | size | hash | not a file | unreadable | restore error | check


class CommandRun(Record):
    """A `verify.commands` check run on the restored tree."""

    command: str
    exit_code: int
    output_tail: str = ""
    duration_ms: int = 0

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _legacy_seconds(data, {"seconds": "duration_ms"})


class ManifestSummary(Record):
    files: int = 0
    snapshot_id: str = ""
    always: int = 0
    canaries: int = 0
    sampled: int = 0
    references: int = 0
    changed_since_snapshot: list[str] = Field(default_factory=list)
    unreadable: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    files_total: int = 0
    bytes_total: int = 0
    round: int = 0
    rounds: int = 1
    coverage: str | None = None  # share of the snapshot's files hashed at least once
    # names the source could not tell apart in restic's listing (first 100); before
    # files_digest_version 2: every name not valid UTF-8
    unverifiable: list[str] = Field(default_factory=list)
    unverifiable_count: int = 0
    # SHA-256 of the snapshot's (path, size) list (verify/listing.files_digest): a full
    # restore whose tree has the same needs no `restic ls`; "" for older manifests
    files_digest: str = ""
    # 1: names not valid UTF-8 left out of files_digest; 2: in it, as restic lists them
    files_digest_version: int = 1

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _legacy_ratio(data, "coverage_ratio", "coverage")


class DatabaseDump(Record):
    """One database dumped by a backup (SPEC §10): its snapshot, size, tables and rows (counts
    only, never row data)."""

    name: str
    kind: str  # postgresql | sqlite
    snapshot_id: str | None = None
    path: str | None = None  # inside the snapshot: /JOB/NAME.pgdump
    sha256: str | None = None
    size: int | None = None
    tables: int = 0
    rows: int = 0
    server_version: int | None = None  # PostgreSQL server_version_num
    dump_version: str | None = None  # pg_dump --version
    duration_ms: int = 0
    error: str | None = None


# -- per kind -----------------------------------------------------------------------------

class BackupDetails(Record):
    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    bytes_added: int = 0
    total_files: int = 0
    total_bytes: int = 0
    duration_ms: int = 0
    generations: int | None = None
    manifest: ManifestSummary | None = None
    suspicious: list[str] = Field(default_factory=list)
    unreadable: list[str] = Field(default_factory=list)  # "PATH: reason" of an incomplete one
    warnings: list[str] = Field(default_factory=list)
    steps: list[str] = Field(default_factory=list)
    databases: list[DatabaseDump] = Field(default_factory=list)
    # snapshots this (failed) run made and removed again: nothing of a failed run looks
    # like a backup to generations, copies or the next verify
    removed_snapshots: list[str] = Field(default_factory=list)
    # `restic version` on the job's host (the orchestrator's is every record's restic_version)
    host_restic_version: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _legacy_seconds(data, {"duration": "duration_ms"})


class Proof(Record):
    """What a restore test proved or found (shared by verify and drill)."""

    files_checked: int = 0
    bytes_checked: int = 0
    mismatches: list[Mismatch] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)
    changed_since_snapshot: list[str] = Field(default_factory=list)
    unverifiable: list[str] = Field(default_factory=list)  # names restic cannot show
    commands: list[CommandRun] = Field(default_factory=list)
    restore_ms: int | None = None  # a full restore, measured (the RTO): files + databases
    rto_seconds: int | None = None  # the objective when the test ran (never today's)
    # decided once, when the record is made (over_rto of the two above): every reader (mail,
    # chart, report, page) reads this, none judges the RTO again
    rto_exceeded: bool | None = None
    files_restored: int | None = None
    bytes_restored: int | None = None
    databases: list[DatabaseProof] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        data = _legacy_seconds(data, {"restore_seconds": "restore_ms",
                                      "total_seconds": "total_ms"})
        if isinstance(data, dict) and data.get("rto_exceeded") is None:
            data = {**data, "rto_exceeded": over_rto(data.get("restore_ms"),
                                                     data.get("rto_seconds"))}
        return data


class VerifyDetails(Proof):
    mode: Literal["quick", "full"] = "quick"
    check_output: str = ""
    coverage: str | None = None
    restic_invocations: int = 0
    timings_ms: dict[str, int] = Field(default_factory=dict)
    steps: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _legacy_verify(cls, data: Any) -> Any:
        data = _legacy_ratio(data, "coverage_ratio", "coverage")
        if isinstance(data, dict) and "timings_ms" not in data and isinstance(
                data.get("timings"), dict):
            data = {**data, "timings_ms": {k: ms(float(v)) for k, v in data["timings"].items()
                                           if isinstance(v, int | float)}}
        return data


class DrillStep(Record):
    name: str
    kind: Literal["auto", "manual"] = "auto"
    result: Literal["pass", "fail", "skipped"] = "pass"
    duration_ms: int = 0
    detail: str = ""

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _legacy_seconds(data, {"seconds": "duration_ms"})


class DrillDetails(Proof):
    result: Literal["pass", "fail", "aborted"] = "fail"
    operator: str = ""
    target: str | None = None
    # replacement: drill --to, the recovery rehearsed on a spare server (target: its URL)
    target_kind: Literal["scratch", "real", "replacement"] = "scratch"
    wiped: bool = False
    steps: list[DrillStep] = Field(default_factory=list)
    manual_steps_confirmed: bool = False
    remarks: str = ""
    total_ms: int = 0


class Medium(Record):
    label: str | None = None  # None: a local path without a label file
    fs_uuid: str | None = None
    path: str = ""


class GenerationCheck(Record):
    """A repository's generations as observed, against what the policy keeps."""

    repository: str
    count: int
    expected: int
    missing: list[str] = Field(default_factory=list)
    medium: str | None = None
    pruned: bool = True
    finding: str | None = None


class CopyDetails(Record):
    copy_name: str = Field(default="", serialization_alias="copy",
                           validation_alias=AliasChoices("copy", "copy_name"))
    copy_kind: Literal["offline", "immutable", ""] = ""
    url: str = ""  # credentials masked
    copied: int = 0
    snapshots: int | None = None
    newest_snapshot_time: str | None = None
    medium: Medium | None = None
    pruned: str | None = None
    generations: GenerationCheck | None = None
    source_snapshots: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    steps: list[str] = Field(default_factory=list)
    locks: LockExtension | None = None  # S3 Object Lock copies

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        if isinstance(data, dict) and "copy_kind" not in data and data.get("kind") in (
                "offline", "immutable"):
            data = {**data, "copy_kind": data["kind"]}
        return data


class Attempt(Record):
    action: str  # write | delete | overwrite | read-back
    target: str  # display path/URL, never with credentials
    outcome: str  # refused | succeeded | error | changed
    detail: str = ""


class ProbeCheck(Record):
    """One named check of an S3 Object Lock probe (SPEC §14)."""

    name: str  # versioning | object-lock | default-retention-mode | … (actions/objectlock)
    ok: bool
    detail: str = ""


class ProbeDetails(Record):
    ok: bool = False
    url: str = ""
    attempts: list[Attempt] = Field(default_factory=list)
    checks: list[ProbeCheck] = Field(default_factory=list)


class LockExtension(Record):
    """An S3 copy's lock extension after a copy: the objects its snapshots need, how many
    were extended, the earliest retention left (ISO 8601 UTC), the S3 calls it cost."""

    objects: int = 0
    asked: int = 0  # read with HeadObject (the others were known locked long enough)
    extended: int = 0
    until: str = ""  # the date extended objects are now locked until
    earliest: str | None = None  # the earliest retention of any needed object, after it
    short: list[str] = Field(default_factory=list)  # keys still locked for too short (≤ 20)
    api_calls: int = 0
    duration_ms: int = 0


class Flag(Record):
    raised_at: str
    reason: str


class ClearDetails(Record):
    reason: str = ""
    cleared: list[Flag] = Field(default_factory=list)


class Aborted(Record):
    """A run that ended before its action could describe it (killed, interrupted, a bug)."""

    status: str = "failed"


Details = (BackupDetails | VerifyDetails | DrillDetails | CopyDetails | ProbeDetails
           | ClearDetails | Aborted)

MODELS: dict[str, type[Record]] = {
    "backup": BackupDetails, "verify": VerifyDetails, "drill": DrillDetails,
    "copy": CopyDetails, "probe": ProbeDetails, "clear": ClearDetails,
}


R = TypeVar("R", bound=Record)


def read(model: type[R], text: str | dict[str, Any] | None) -> R:
    """Details as `model` (JSON text or a dict), tolerant of older rows.

    Details that no longer fit the model (edited by hand, cut off) read as empty details
    rather than raising: readers show what is known, and `evidence verify` reports the
    edit."""
    try:
        data = json.loads(text) if isinstance(text, str) else (text or {})
        return model.model_validate(data if isinstance(data, dict) else {})
    except (ValueError, ValidationError):
        return model()
