"""Load and validate the global configuration and every job file, reporting all errors at once.

Errors are `FILE:LINE: key.path: message`, sorted by file and line. A problem in the global
configuration means exit 2 and nothing runs. A broken job file spoils only itself
(`partial=True`, what the run commands and `status` load): it is left out of `Config.jobs`
and listed in `Config.invalid`, so the other jobs still run and the command exits 2 at the
end; `validate` loads everything or nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from backupctl.config import calendar
from backupctl.config.dsn import database_url_problem, database_url_secrets
from backupctl.config.load import Document, Problem, load_yaml, plain
from backupctl.config.notify import PingFileError, read_ping_url
from backupctl.config.schema import GlobalConfig, Job
from backupctl.errors import ConfigError
from backupctl.log import register_secret
from backupctl.restic.s3 import credentials_problem
from backupctl.secrets import private_file_problem, register_url_secrets

DEFAULT_CONFIG = Path("/etc/backupctl/backupctl.yaml")
M = TypeVar("M", bound=BaseModel)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class JobFile:
    path: Path
    job: Job
    document: Document


@dataclass(frozen=True)
class InvalidJobFile:
    """A job file that did not validate: left out of the run, its problems reported."""

    path: Path
    name: str | None  # its `job:` value, when the file names one
    problems: tuple[Problem, ...]

    @property
    def label(self) -> str:
        """How the command line names it: the job's name, else the file's stem."""
        return self.name or self.path.stem

    def messages(self) -> list[str]:
        return [str(p) for p in self.problems]

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "job": self.name,
                "problems": [{"line": p.line, "key": p.key, "message": p.message}
                             for p in self.problems]}


@dataclass(frozen=True)
class Config:
    path: Path
    settings: GlobalConfig
    jobs: dict[str, JobFile] = field(default_factory=dict)
    invalid: tuple[InvalidJobFile, ...] = ()  # job files left out (partial loading only)

    def job(self, name: str) -> Job:
        return self.jobs[name].job

    def invalid_named(self, names: list[str]) -> list[InvalidJobFile]:
        """The invalid job files among `names` (a job's name or its file's stem)."""
        return [f for f in self.invalid if f.label in names or f.path.stem in names]

    def select(self, names: list[str], *, all_jobs: bool) -> list[Job]:
        """The valid jobs asked for on the command line; a name that is neither a job nor an
        invalid job file (`invalid_named`, reported by the caller) is a usage error."""
        if all_jobs == bool(names):
            raise ConfigError(["name one or more jobs, or give --all (not both)"])
        if all_jobs:
            return [jf.job for jf in sorted(self.jobs.values(), key=lambda j: j.job.name)]
        broken = {n for f in self.invalid_named(names) for n in (f.label, f.path.stem)}
        unknown = [n for n in names if n not in self.jobs and n not in broken]
        if unknown:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise ConfigError([f"unknown job {n!r} (jobs in {self.settings.jobs_dir}: {known})"
                               for n in unknown])
        return [self.jobs[n].job for n in dict.fromkeys(names) if n in self.jobs]


def config_path(option: Path | None) -> Path:
    if option is not None:
        return option
    env = os.environ.get("BACKUPCTL_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG


def _resolve(base: Path, value: Any) -> Any:
    if isinstance(value, str) and value and not value.startswith("/"):
        return str(base / value)
    return value


def _absolutize(data: dict[str, Any], base: Path, locations: list[tuple[str, ...]]) -> None:
    """Relative file paths in a config file are relative to that file's directory."""
    for loc in locations:
        node: Any = data
        for part in loc[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and loc[-1] in node:
            node[loc[-1]] = _resolve(base, node[loc[-1]])
        elif isinstance(node, list):
            for item in node:
                if isinstance(item, dict) and loc[-1] in item:
                    item[loc[-1]] = _resolve(base, item[loc[-1]])


def _model(doc: Document, model: type[M], data: dict[str, Any],
           problems: list[Problem]) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(doc.problems_from(exc, model))
        return None


def _refuse(problems: list[Problem], *, first: Path) -> ConfigError:
    """Every problem, sorted by file (the global configuration first) and line."""
    ordered = sorted(problems, key=lambda p: (p.file != first, str(p.file), p.line))
    return ConfigError([str(p) for p in ordered])


def load_config(path: Path, *, strict: bool = False, partial: bool = False) -> Config:
    """Raises ConfigError listing every problem found; with `partial`, invalid job files are
    left out and listed in `Config.invalid` instead (the global configuration must be valid).
    """
    problems: list[Problem] = []
    doc = load_yaml(path)
    if isinstance(doc, Problem):
        raise ConfigError([str(doc)])
    data = plain(doc.data)
    _absolutize(data, path.parent.resolve(),
                [("jobs_dir",), ("state_dir",), ("scratch_dir",), ("known_hosts",),
                 ("textfile_dir",), ("evidence_key",), ("evidence_anchor_file",),
                 ("web_password_file",)])
    _absolutize_notify(data, path.parent.resolve())
    if isinstance(trusted := data.get("evidence_trusted_keys"), list):
        data["evidence_trusted_keys"] = [_resolve(path.parent.resolve(), k) for k in trusted]
    settings = _model(doc, GlobalConfig, data, problems)
    problems.extend(doc.problem(loc, msg) for loc, msg in control_characters(data))
    problems.extend(doc.problem(loc, msg) for loc, msg in _check_database_url(data))
    key = data.get("evidence_key")
    if isinstance(key, str) and Path(key).exists() and (
            msg := private_file_problem(Path(key), "evidence key")):
        problems.append(doc.problem(["evidence_key"], msg))
    web = data.get("web_password_file")
    if isinstance(web, str) and web and (msg := _private_file(Path(web), "web password file")):
        problems.append(doc.problem(["web_password_file"], msg))
    if settings is None or problems:
        raise _refuse(problems, first=path)
    problems.extend(doc.problem(loc, msg) for loc, msg in _check_notify_channels(data))
    problems.extend(doc.problem(["evidence_trusted_keys", i], msg)
                    for i, msg in _trusted_key_problems(settings.evidence_trusted_keys))
    if (reason := _not_a_directory(settings.jobs_dir)) is not None:
        problems.append(doc.problem(["jobs_dir"], f"directory {settings.jobs_dir} {reason}"))
        raise _refuse(problems, first=path)
    jobs, invalid = _load_jobs(settings.jobs_dir, strict=strict)
    if problems or (invalid and not partial):
        raise _refuse([*problems, *(p for f in invalid for p in f.problems)], first=path)
    register_url_secrets(settings.database_url, *(
        url for jf in jobs.values() for url in (
            jf.job.repository.url, jf.job.repository.local_url,
            *(c.url for c in jf.job.copies))))
    return Config(path=path, settings=settings, jobs=jobs, invalid=tuple(invalid))


def _load_jobs(jobs_dir: Path, *, strict: bool,
               ) -> tuple[dict[str, JobFile], list[InvalidJobFile]]:
    """Every job file: the valid ones by job name, and the invalid ones with their problems.
    Two files naming the same job are both invalid: which one is the real job is for the
    admin to say, not for the alphabet."""
    files = sorted([*jobs_dir.glob("*.yaml"), *jobs_dir.glob("*.yml")])
    docs = {job_path: load_yaml(job_path) for job_path in files}
    calendar.check_all(expr for doc in docs.values() if not isinstance(doc, Problem)
                       for _, expr in _schedules(doc.data))
    names = {p: n for p, d in docs.items() if not isinstance(d, Problem)
             and isinstance(n := d.data.get("job"), str)}
    jobs: dict[str, JobFile] = {}
    invalid: list[InvalidJobFile] = []
    for job_path, job_doc in docs.items():
        others = [p for p, n in names.items() if p != job_path and n == names.get(job_path)]
        job_file, problems = _load_job(job_path, job_doc, others, strict=strict)
        if job_file is not None:
            jobs[job_file.job.name] = job_file
        else:
            invalid.append(InvalidJobFile(job_path, names.get(job_path), tuple(
                sorted(problems, key=lambda p: p.line))))
    return jobs, invalid


def _load_job(path: Path, doc: Document | Problem, duplicates: list[Path], *,
              strict: bool) -> tuple[JobFile | None, list[Problem]]:
    """Validate one job file: the job, or None and every problem found (schema, files,
    schedule, strict)."""
    if isinstance(doc, Problem):
        return None, [doc]
    data = plain(doc.data)
    _absolutize(data, path.parent.resolve(),
                [("host", "identity_file"), ("repository", "password_file"),
                 ("copies", "password_file"), ("copies", "s3_credentials_file"),
                 ("notify", "ping", "backup"),
                 ("notify", "ping", "copy"), ("notify", "ping", "verify")])
    problems = [doc.problem(["job"], f"duplicate job name {data.get('job')!r} (also in "
                                     f"{', '.join(map(str, duplicates))})")] if duplicates else []
    job = _model(doc, Job, data, problems)
    # The checks below read the raw data, so they report alongside schema errors.
    for check in _CHECKS:
        problems.extend(doc.problem(loc, msg) for loc, msg in check(data))
    if strict:
        problems.extend(doc.problem(loc, msg) for loc, msg in guideline_findings(data))
    return (JobFile(path, job, doc) if job is not None and not problems else None), problems


Finding = tuple[list[str | int], str]


def _not_a_directory(path: Path) -> str | None:
    try:
        return None if path.is_dir() else "does not exist"
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, ...
        return f"cannot be used: {getattr(exc, 'strerror', None) or exc}"


def _readable_file(path: Path, what: str) -> str | None:
    try:
        return _unreadable(path, what)
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, ...
        return f"{what} cannot be used: {getattr(exc, 'strerror', None) or exc}"


def _unreadable(path: Path, what: str) -> str | None:
    if not path.exists():
        return f"{what} {path} does not exist"
    if not path.is_file():
        return f"{what} {path} is not a regular file"
    if not os.access(path, os.R_OK):
        return f"{what} {path} is not readable by this user"
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return f"{what} {path} cannot be read: {exc.strerror or exc}"
    return None


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[tuple[int, str]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str)] \
        if isinstance(value, list) else []


def _private_file(path: Path, what: str) -> str | None:
    """A file holding a password or key: readable, owned by us, no group/other access."""
    return _readable_file(path, what) or private_file_problem(path, what)


def _check_files(data: dict[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    password = _mapping(data, "repository").get("password_file")
    if isinstance(password, str) and password and (
            msg := _private_file(Path(password), "password file")):
        found.append((["repository", "password_file"], msg))
    copies = data.get("copies")
    for i, copy in enumerate(copies if isinstance(copies, list) else []):
        password = copy.get("password_file") if isinstance(copy, dict) else None
        if isinstance(password, str) and password and (
                msg := _private_file(Path(password), "password file")):
            found.append((["copies", i, "password_file"], msg))
        keys = copy.get("s3_credentials_file") if isinstance(copy, dict) else None
        if isinstance(keys, str) and keys and (msg := credentials_problem(Path(keys))):
            found.append((["copies", i, "s3_credentials_file"], msg))
    identity = _mapping(data, "host").get("identity_file")
    if isinstance(identity, str) and identity and (
            msg := _private_file(Path(identity), "identity file")):
        found.append((["host", "identity_file"], msg))
    return found


def control_characters(data: Any, loc: tuple[str | int, ...] = ()) -> list[Finding]:
    """Every string value (or key) holding a control character: a newline in a job value
    would reach systemd units, crontabs and remote shells as a new line of their own."""
    found: list[Finding] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and _CONTROL.search(key):
                found.append(([*loc, key], "the key contains a control character"))
            found += control_characters(value, (*loc, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += control_characters(value, (*loc, i))
    elif isinstance(data, str) and (bad := _CONTROL.search(data)):
        found.append((list(loc), f"contains a control character ({bad.group(0)!r}); "
                                 "write it on one line without tabs or escapes"))
    return found


def _schedules(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(key, expr) for key, expr in _mapping(data, "schedule").items()
            if key in ("backup", "copy", "verify", "verify_full") and isinstance(expr, str)]


def _check_schedule(data: dict[str, Any]) -> list[Finding]:
    return [(["schedule", key], f"bad OnCalendar expression {expr!r}: {reason}")
            for key, expr in _schedules(data) if (reason := calendar.check(expr))]


def _check_verify_paths(data: dict[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    roots = [p.rstrip("/") for _, p in _strings(_mapping(data, "source").get("paths"))]
    if not roots:
        return found
    verify = _mapping(data, "verify")
    for key in ("always", "canaries"):
        for i, path in _strings(verify.get(key)):
            if not any(path == r or path.startswith(r + "/") or r == "" for r in roots):
                found.append((["verify", key, i],
                              f"{path!r} is not under any of source.paths"))
    return found


def _trusted_key_problems(paths: list[Path]) -> list[tuple[int, str]]:
    """Each trusted evidence key must be a readable Ed25519 public key (PEM)."""
    if not paths:
        return []
    from cryptography.hazmat.primitives import serialization  # only when keys are listed
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    found = []
    for i, path in enumerate(paths):
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except OSError as exc:
            found.append((i, f"cannot read {path}: {exc.strerror or exc}"))
            continue
        except ValueError:
            key = None
        if not isinstance(key, Ed25519PublicKey):
            found.append((i, f"{path} is not an Ed25519 public key in PEM (an evidence "
                             "key's .pub file)"))
    return found


def _absolutize_notify(data: dict[str, Any], base: Path) -> None:
    channels = _mapping(data, "notify").get("channels")
    for channel in channels if isinstance(channels, list) else []:
        if not isinstance(channel, dict):
            continue
        if "apprise_file" in channel:
            channel["apprise_file"] = _resolve(base, channel["apprise_file"])
        email = channel.get("email")
        if isinstance(email, dict) and "password_file" in email:
            email["password_file"] = _resolve(base, email["password_file"])


def _check_notify_channels(data: dict[str, Any]) -> list[Finding]:
    """The global configuration's notification channel files (tokens, mail passwords)."""
    found: list[Finding] = []
    channels = _mapping(data, "notify").get("channels")
    for i, channel in enumerate(channels if isinstance(channels, list) else []):
        if not isinstance(channel, dict):
            continue
        apprise = channel.get("apprise_file")
        if isinstance(apprise, str) and apprise and (
                msg := _private_file(Path(apprise), "Apprise URL file")):
            found.append((["notify", "channels", i, "apprise_file"], msg))
        email = channel.get("email")
        password = email.get("password_file") if isinstance(email, dict) else None
        if isinstance(password, str) and password and (
                msg := _private_file(Path(password), "mail password file")):
            found.append((["notify", "channels", i, "email", "password_file"], msg))
    return found


def _check_ping_files(data: dict[str, Any]) -> list[Finding]:
    """Each ping URL file: private, and one http(s) URL (registered for masking here, before
    any run could print it)."""
    found: list[Finding] = []
    ping = _mapping(_mapping(data, "notify"), "ping")
    for kind in ("backup", "copy", "verify"):
        value = ping.get(kind)
        if not isinstance(value, str) or not value:
            continue
        if msg := _private_file(Path(value), "ping URL file"):
            found.append((["notify", "ping", kind], msg))
            continue
        try:
            read_ping_url(Path(value))
        except PingFileError as exc:
            found.append((["notify", "ping", kind], str(exc)))
    return found


def _check_database_url(data: dict[str, Any]) -> list[Finding]:
    """database_url holds no password (~/.pgpass does). Whatever it holds is registered for
    masking first, so no later message can show it."""
    url = data.get("database_url")
    if not isinstance(url, str):
        return []
    for secret in database_url_secrets(url):
        register_secret(secret)
    problem = database_url_problem(url)
    return [(["database_url"], problem)] if problem else []


_CHECKS: list[Callable[[dict[str, Any]], list[Finding]]] = [
    _check_files, _check_schedule, _check_verify_paths, _check_ping_files,
    control_characters]

_NO_COPY = ("no offline or immutable copy: the guideline requires one copy that ransomware "
            "cannot reach or change (add one under copies, kind: offline or immutable)")
_FEW_GENERATIONS = ("fewer than 2 generations kept: the guideline requires several "
                    "generations (e.g. last: 7, daily: 14)")


def guideline_findings(data: dict[str, Any]) -> list[Finding]:
    """What `validate --strict` enforces of a job file's data (the guideline's minimum)."""
    found: list[Finding] = []
    copies = data.get("copies")
    if not any(isinstance(c, dict) and c.get("kind") in ("offline", "immutable")
               for c in (copies if isinstance(copies, list) else [])):
        found.append((["copies"], _NO_COPY))
    generations = _mapping(data, "generations")
    counts = [v for v in generations.values() if isinstance(v, int) and not isinstance(v, bool)]
    if counts and max(counts) < 2:
        found.append((["generations"], _FEW_GENERATIONS))
    return found
