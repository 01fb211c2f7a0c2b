"""A state database with several jobs in every status, written through the real Store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backupctl.config.schema import Job
from backupctl.metrics import Source
from backupctl.state.db import Store
from backupctl.state.records import MODELS, Proof, read
from backupctl.state.schema import flags, generations
from backupctl.state.view import StateReader
from tests import runs

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, hours: float) -> None:
        self.now = T0 + timedelta(hours=hours)


def make_job(name: str, *, copies: list[dict[str, Any]] | None = None,
             rto: str | None = None) -> Job:
    verify: dict[str, Any] = {"rto": rto} if rto else {}
    return Job.model_validate({
        "job": name, "description": f"テスト {name}", "host": {"address": "local"},
        "source": {"paths": ["/srv"]},
        "repository": {"url": f"/repo/{name}", "password_file": "/pw"},
        "generations": {"last": 7}, "copies": copies or [], "verify": verify,
        "schedule": {"backup": "*-*-* 02:00:00", "verify": "Sun *-*-* 04:00:00"}})


USB = {"name": "usb", "kind": "offline", "url": "/mnt/usb", "password_file": "/pw",
       "max_age": "7d"}
WORM = {"name": "worm", "kind": "immutable", "url": "rest:http://vault/", "password_file": "/pw",
        "max_age": "2d"}


@dataclass
class Fleet:
    store: Store
    clock: FakeClock
    jobs: list[Job]
    url: str

    def run(self, job: str, kind: str, status: str, *, at: float, repository: str = "primary",
            **details: Any) -> None:
        self.clock.at(at)
        run_id = runs.start(self.store, job=job, kind=kind, repository=repository)
        if status != "running":
            typed = read(MODELS[kind], details)
            runs.finish(self.store, run_id, status=status, details=typed, evidence=False,
                        restore_ms=typed.restore_ms if isinstance(typed, Proof) else None)

    def source(self, *, jobs: list[Job] | None = None, url: str | None = None) -> Source:
        chosen = self.jobs if jobs is None else jobs
        return Source(jobs=lambda: chosen, reader=StateReader(url or self.url),
                      restic_version="0.14.0", clock=self.clock)


def ts(hours: float) -> float:
    return (T0 + timedelta(hours=hours)).timestamp()


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return populate(f"sqlite:///{tmp_path / 'state.db'}")


def populate(url: str) -> Fleet:
    """ok: everything passed; failed: everything failed after an earlier success;
    never: nothing ran; broken: interrupted and running runs; ransom: suspicious."""
    clock = FakeClock()
    store = Store(url, clock=clock)
    jobs = [make_job("ok", copies=[USB, WORM], rto="2h"), make_job("failed", copies=[WORM]),
            make_job("never", copies=[USB, WORM], rto="1h"), make_job("broken"),
            make_job("ransom")]
    f = Fleet(store=store, clock=clock, jobs=jobs, url=url)
    backup: dict[str, Any] = {"bytes_added": 1048576, "duration": 12.5, "generations": 4,
                              "files_new": 3, "files_changed": 1}
    f.run("ok", "backup", "success", at=0, **backup)
    f.run("ok", "verify", "success", at=1, files_checked=40, mismatches=[], restore_seconds=300.0,
          rto_seconds=7200, coverage_ratio=1.0, mode="full")
    f.run("ok", "verify", "success", at=2, files_checked=12, mismatches=[],
          restore_seconds=None, rto_seconds=7200, coverage_ratio=0.05, mode="quick")
    f.run("ok", "verify", "success", at=2.5, repository="usb", files_checked=12,
          mismatches=[], restore_seconds=None, coverage_ratio=0.05, mode="quick")
    f.run("ok", "copy", "success", at=3, repository="usb")
    f.run("ok", "copy", "success", at=3, repository="worm")
    f.run("ok", "probe", "success", at=3.1, repository="worm")

    f.run("failed", "backup", "success", at=0, **backup)
    f.run("failed", "backup", "failed", at=24)
    f.run("failed", "verify", "success", at=1, files_checked=10, mismatches=[], mode="quick")
    f.run("failed", "verify", "bad_data", at=25, files_checked=10, mode="full",
          mismatches=[{"path": "/srv/a", "reason": "hash"}, {"path": "/srv/b",
                                                              "reason": "missing"}],
          restore_seconds=9000.0, rto_seconds=None, coverage_ratio=0.5)
    f.run("failed", "copy", "success", at=3, repository="worm")
    f.run("failed", "copy", "failed", at=26, repository="worm")
    f.run("failed", "probe", "failed", at=26.1, repository="worm")

    f.run("broken", "backup", "success", at=0, **backup)
    f.run("broken", "backup", "interrupted", at=24)
    f.run("broken", "backup", "running", at=48)

    f.run("ransom", "backup", "bad_data", at=24, **backup)
    with store.transaction() as conn:
        conn.execute(flags.insert().values(job="ransom", name="suspicious",
                                           raised_at=store.now(), reason="canary"))
        conn.execute(flags.insert().values(job="ok", name="suspicious", raised_at=store.now(),
                                           reason="old", cleared_at=store.now(),
                                           cleared_by="yamada", clear_reason="checked"))
        conn.execute(generations.insert(), [
            {"job": "ok", "repository": "primary", "count": 2, "expected": 7,
             "observed_at": store.now()},
            {"job": "ok", "repository": "primary", "count": 7, "expected": 7,
             "observed_at": store.now()},
            {"job": "ok", "repository": "usb", "count": 5, "expected": 7,
             "observed_at": store.now()}])
    clock.at(30)
    return f
