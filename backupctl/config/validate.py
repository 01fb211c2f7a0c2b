"""Load and validate the global configuration and every job file, reporting all errors at once.

Errors are `FILE:LINE: key.path: message`; any error means exit 2 and nothing runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from backupctl.config import calendar
from backupctl.config.load import Document, Problem, load_yaml, plain
from backupctl.config.schema import GlobalConfig, Job
from backupctl.errors import ConfigError

DEFAULT_CONFIG = Path("/etc/backupctl/backupctl.yaml")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class JobFile:
    path: Path
    job: Job
    document: Document


@dataclass(frozen=True)
class Config:
    path: Path
    settings: GlobalConfig
    jobs: dict[str, JobFile] = field(default_factory=dict)

    def job(self, name: str) -> Job:
        return self.jobs[name].job

    def select(self, names: list[str], *, all_jobs: bool) -> list[Job]:
        """The jobs asked for on the command line; an unknown name is a usage error."""
        if all_jobs == bool(names):
            raise ConfigError(["name one or more jobs, or give --all (not both)"])
        if all_jobs:
            return [jf.job for jf in sorted(self.jobs.values(), key=lambda j: j.job.job)]
        unknown = [n for n in names if n not in self.jobs]
        if unknown:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise ConfigError([f"unknown job {n!r} (jobs in {self.settings.jobs_dir}: {known})"
                               for n in unknown])
        return [self.jobs[n].job for n in dict.fromkeys(names)]


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
        problems.extend(doc.problems_from(exc))
        return None


def load_config(path: Path, *, strict: bool = False) -> Config:
    """Everything or nothing: raises ConfigError listing every problem found."""
    problems: list[Problem] = []
    doc = load_yaml(path)
    if isinstance(doc, Problem):
        raise ConfigError([str(doc)])
    data = plain(doc.data)
    _absolutize(data, path.parent.resolve(),
                [("jobs_dir",), ("state_dir",), ("scratch_dir",), ("known_hosts",),
                 ("textfile_dir",)])
    settings = _model(doc, GlobalConfig, data, problems)
    if settings is None:
        raise ConfigError([str(p) for p in problems])
    if not settings.jobs_dir.is_dir():
        problems.append(doc.problem(["jobs_dir"], f"directory {settings.jobs_dir} does not exist"))
        raise ConfigError([str(p) for p in problems])
    jobs: dict[str, JobFile] = {}
    files = sorted([*settings.jobs_dir.glob("*.yaml"), *settings.jobs_dir.glob("*.yml")])
    for job_path in files:
        job_file = _load_job(job_path, problems, strict=strict)
        if job_file is None:
            continue
        name = job_file.job.job
        if name in jobs:
            problems.append(job_file.document.problem(
                ["job"], f"duplicate job name {name!r} (also in {jobs[name].path})"))
            continue
        jobs[name] = job_file
    if problems:
        raise ConfigError([str(p) for p in problems])
    return Config(path=path, settings=settings, jobs=jobs)


def _load_job(path: Path, problems: list[Problem], *, strict: bool) -> JobFile | None:
    doc = load_yaml(path)
    if isinstance(doc, Problem):
        problems.append(doc)
        return None
    data = plain(doc.data)
    _absolutize(data, path.parent.resolve(),
                [("host", "identity_file"), ("repository", "password_file"),
                 ("copies", "password_file")])
    job = _model(doc, Job, data, problems)
    if job is None:
        return None
    before = len(problems)
    for check in _CHECKS:
        problems.extend(doc.problem(loc, msg) for loc, msg in check(job))
    if strict:
        problems.extend(doc.problem(loc, msg) for loc, msg in strict_findings(job))
    return JobFile(path, job, doc) if len(problems) == before else None


Finding = tuple[list[str | int], str]


def _readable_file(path: Path, what: str) -> str | None:
    if not path.is_file():
        return f"{what} {path} does not exist"
    if not os.access(path, os.R_OK):
        return f"{what} {path} is not readable by this user"
    return None


def _check_files(job: Job) -> list[Finding]:
    found: list[Finding] = []
    if (msg := _readable_file(job.repository.password_file, "password file")):
        found.append((["repository", "password_file"], msg))
    for i, copy in enumerate(job.copies):
        if (msg := _readable_file(copy.password_file, "password file")):
            found.append((["copies", i, "password_file"], msg))
    if job.host.identity_file is not None and (
            msg := _readable_file(job.host.identity_file, "identity file")):
        found.append((["host", "identity_file"], msg))
    return found


def _check_schedule(job: Job) -> list[Finding]:
    found: list[Finding] = []
    for key, expr in (("backup", job.schedule.backup), ("copy", job.schedule.copy_),
                      ("verify", job.schedule.verify)):
        if expr is not None and (reason := calendar.check(expr)):
            found.append((["schedule", key], f"bad OnCalendar expression {expr!r}: {reason}"))
    return found


def _check_verify_paths(job: Job) -> list[Finding]:
    found: list[Finding] = []
    roots = [p.rstrip("/") for p in job.source.paths]
    for key in ("always", "canaries"):
        for i, path in enumerate(getattr(job.verify, key)):
            if not any(path == r or path.startswith(r + "/") or r == "" for r in roots):
                found.append((["verify", key, i],
                              f"{path!r} is not under any of source.paths"))
    return found


_CHECKS: list[Callable[[Job], list[Finding]]] = [_check_files, _check_schedule,
                                                 _check_verify_paths]


def strict_findings(job: Job) -> list[Finding]:
    """Guideline requirements that `validate --strict` enforces."""
    found: list[Finding] = []
    if not job.copies:
        found.append((["copies"], "no offline or immutable copy: the guideline requires one "
                                  "copy that ransomware cannot reach or change"))
    if job.generations.most_kept() < 2:
        found.append((["generations"], "fewer than 2 generations kept: the guideline requires "
                                       "several generations"))
    return found
