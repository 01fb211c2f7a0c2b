"""A site with notification channels pointed at the real test servers (tests/notify_servers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backupctl.config.validate import Config, load_config
from backupctl.notify.channels import Budget
from backupctl.notify.model import FinishedRun
from backupctl.state import queries
from backupctl.state.db import Store
from backupctl.state.records import MODELS
from tests import runs, yaml_helpers
from tests.notify_servers import (  # noqa: F401
    http_receiver,
    silent_server,
    smtp_server,
    trickle_server,
)

PATIENT_PATH = "/srv/emr/患者/山田太郎_紹介状.pdf"
SMTP_PASSWORD = "smtp-Pa55word-9c1e"
TOKEN = "hc-token-5d2f0a"
FAST = Budget(seconds=3.0, attempt=1.0, attempts=2)  # fault tests: give up quickly


def secret_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 2, 2, 17, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Site:
    root: Path
    clock: Clock = field(default_factory=Clock)
    channels: list[dict[str, Any]] = field(default_factory=list)
    ping: dict[str, str] = field(default_factory=dict)
    notify: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, str] = field(default_factory=lambda: {
        "backup": "*-*-* 02:00:00", "verify": "Sun *-*-* 04:00:00"})

    @property
    def config_path(self) -> Path:
        return self.root / "backupctl.yaml"

    def email(self, name: str, url: str, *, password: str | None = None) -> None:
        entry: dict[str, Any] = {"url": url, "from": "backupctl@hospital.example",
                                 "to": ["it-team@hospital.example"]}
        if password is not None:
            entry["password_file"] = str(secret_file(self.root / "secrets" / f"{name}-pw",
                                                     password))
        self.channels.append({"name": name, "email": entry})

    def apprise(self, name: str, *urls: str) -> None:
        path = secret_file(self.root / "secrets" / f"{name}-apprise", "\n".join(urls))
        self.channels.append({"name": name, "apprise_file": str(path)})

    def ping_url(self, kind: str, url: str) -> None:
        self.ping[kind] = str(secret_file(self.root / "secrets" / f"hc-{kind}", url))

    def config(self) -> Config:
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)
        (self.root / "known_hosts").touch()
        pw = secret_file(self.root / "secrets" / "repo", "repo-password")
        self.config_path.write_text(yaml_helpers.dump({
            "jobs_dir": str(self.root / "jobs"), "state_dir": str(self.root / "state"),
            "scratch_dir": str(self.root / "scratch"),
            "known_hosts": str(self.root / "known_hosts"),
            "notify": {"language": "ja", **self.notify, "channels": self.channels}}))
        job: dict[str, Any] = {
            "job": "emr-db", "description": "電子カルテDBサーバ", "host": {"address": "local"},
            "source": {"paths": ["/srv/emr"]},
            "repository": {"url": "/srv/restic/emr-db", "password_file": str(pw)},
            "generations": {"last": 7}, "schedule": self.schedule,
            "verify": {"rto": "1h"},
            "copies": [{"name": "worm", "kind": "immutable", "url": "rest:http://127.0.0.1:1/x",
                        "password_file": str(pw), "max_age": "2d"}]}
        if self.ping:
            job["notify"] = {"ping": self.ping}
        (self.root / "jobs" / "emr-db.yaml").write_text(yaml_helpers.dump(job))
        return load_config(self.config_path)

    def store(self) -> Store:
        return Store(f"sqlite:///{self.root / 'state.db'}", clock=self.clock)

    def run(self, store: Store, kind: str = "backup", *, status: str = "success",
            repository: str = "primary", error: str | None = None,
            details: dict[str, Any] | None = None, hours: float = 24) -> FinishedRun:
        """A real run row (started, finished) `hours` after the previous one."""
        self.clock.now += timedelta(hours=hours)
        run_id = runs.start(store, job="emr-db", kind=kind, repository=repository)
        self.clock.now += timedelta(minutes=10)
        runs.finish(store, run_id, status=status, error=error,
                    details=MODELS[kind].model_validate(details or {}))
        return FinishedRun.of(store.query(queries.run, run_id))


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(root=tmp_path / "site")
