"""The status page over the metrics tests' fleet (a real SQLite state in every status)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from backupctl.config import calendar
from backupctl.config.schema import GlobalConfig
from backupctl.config.validate import Config
from backupctl.web.page import StatusPage
from backupctl.web.schedules import Schedules
from tests.unit.metrics.conftest import Fleet, populate

DAY = 86400


def settings(tmp_path: Path, **extra: Any) -> Config:
    return Config(path=tmp_path / "backupctl.yaml", settings=GlobalConfig.model_validate({
        "jobs_dir": str(tmp_path), "state_dir": str(tmp_path), "scratch_dir": str(tmp_path),
        "known_hosts": str(tmp_path / "kh"), "timezone": "Asia/Tokyo", **extra}))


def fixed_schedules() -> Schedules:
    """Daily backups, weekly restore tests, next elapses a day ahead: no systemd-analyze."""
    def analyze(expr: str, *, iterations: int, base: datetime, tz: str | None,
                ) -> calendar.Analyzed:
        return calendar.Analyzed(ok=True, elapses=(datetime.fromtimestamp(
            base.timestamp() + DAY, base.tzinfo),))

    return Schedules(analyze=analyze,
                     interval=lambda expr: 7 * DAY if expr.startswith("Sun") else DAY)


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return populate(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture
def page(fleet: Fleet, tmp_path: Path) -> StatusPage:
    config = settings(tmp_path)
    return StatusPage(config=lambda: config, jobs=lambda: fleet.jobs,
                      reader=fleet.source().reader, clock=fleet.clock,
                      schedules=fixed_schedules())
