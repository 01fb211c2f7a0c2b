"""A Context on a real SQLite state database, a job on disk, and fake runners."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from backupctl.actions.context import Context
from backupctl.config.schema import Job
from backupctl.config.validate import load_config
from backupctl.execute.fake import FakeRunner
from backupctl.state.db import Store


def make_context(root: Path, *, local: FakeRunner | None = None,
                 **job: Any) -> tuple[Context, Job]:
    """A config with one local job `emr` (overridden by `job`) and its context."""
    (root / "jobs").mkdir(parents=True, exist_ok=True)
    (root / "pw").write_text("unit-test-password\n")
    (root / "pw").chmod(0o600)
    (root / "backupctl.yaml").write_text(
        f"jobs_dir: {root / 'jobs'}\nstate_dir: {root / 'state'}\n"
        f"scratch_dir: {root / 'scratch'}\nknown_hosts: {root / 'kh'}\n")
    data: dict[str, Any] = {
        "job": "emr", "host": {"address": "local"}, "source": {"paths": ["/srv/emr"]},
        "repository": {"url": str(root / "repo"), "password_file": str(root / "pw")},
        "generations": {"last": 3}, "schedule": {"backup": "daily", "verify": "weekly"},
        **job}
    with (root / "jobs" / "emr.yaml").open("w") as handle:
        YAML().dump(data, handle)
    config = load_config(root / "backupctl.yaml")
    (root / "state").mkdir(exist_ok=True)
    runner = local or FakeRunner(host="local")
    runner.on("version", stdout=b"restic 0.14.0 compiled with go1.19.8\n")
    ctx = Context(config=config, store=Store(config.settings.effective_database_url),
                  local=runner, host_runner=lambda _c, _j: runner)
    return ctx, config.job("emr")


@pytest.fixture
def unit_ctx(tmp_path: Path) -> tuple[Context, Job]:
    return make_context(tmp_path)
