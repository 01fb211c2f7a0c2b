"""actions.recovery.databases: every refusal of `--databases` comes before anything runs."""

from __future__ import annotations

from typing import Any

import pytest

from backupctl.actions.recovery import databases as ontos
from backupctl.actions.recovery import plan as plans
from backupctl.actions.recovery.target import parse
from backupctl.config.schema import Job
from backupctl.databases import DumpManifest
from backupctl.databases.onto import Looked
from backupctl.errors import UsageError


def _job(*databases: dict[str, Any]) -> Job:
    return Job.model_validate({
        "job": "emr", "host": {"address": "10.0.0.5", "user": "root", "identity_file": "/k"},
        "source": {"paths": ["/srv/emr"]}, "databases": list(databases),
        "repository": {"url": "/r", "password_file": "/p"}, "generations": {"last": 2},
        "schedule": {"backup": "daily", "verify": "weekly"}})


PG = {"name": "emr", "kind": "postgresql", "dsn": "host=/run/postgresql dbname=emr"}


def _planned(job: Job, server: int = 150000) -> ontos.Planned:
    manifest = DumpManifest(job="emr", database="emr", kind="postgresql", snapshot_id="ab",
                            path="/emr.emr.pgdump", sha256="0" * 64, size=1, tables={},
                            server_version=server)
    return ontos.Planned("dbname=postgres", (ontos.Onto(job.databases[0], manifest),))


@pytest.mark.parametrize(("looked", "said"), [
    (Looked("rec", False, 15, (), 15), "may not create databases"),
    (Looked("rec", True, 15, ("emr_restored",), 15), "emr_restored already exist"),
    (Looked("rec", True, 15, (), None), "pg_restore is not installed"),
    (Looked("rec", True, 15, (), 14), "comes from PostgreSQL 15"),
])
def test_the_targets_postgresql_is_refused_before_anything_runs(looked: Looked,
                                                                said: str) -> None:
    job = _job(PG)
    with pytest.raises(UsageError, match=said) as caught:
        ontos.refuse(job, _planned(job), looked, shown="ssh://root@new:22/d")
    assert "nothing was run" in str(caught.value)


def test_a_ready_target_passes() -> None:
    job = _job(PG)
    ontos.refuse(job, _planned(job), Looked("rec", True, 15, (), 16), shown="x")


def test_a_job_without_postgresql_dumps_or_with_a_password_in_the_dsn_is_refused() -> None:
    with pytest.raises(UsageError, match="has no databases"):
        ontos._kinds(_job())
    with pytest.raises(UsageError, match=r"app \(sqlite\) cannot be"):
        ontos._kinds(_job(PG, {"name": "app", "kind": "sqlite", "dsn": "/var/app.db"}))
    with pytest.raises(UsageError, match="holds a password") as caught:
        ontos._dsn(_job(PG), "user=x password=hunter2")
    assert "hunter2" not in str(caught.value)


def test_the_dry_run_plan_says_what_databases_would_do_on_the_target() -> None:
    request = plans.Request(parse("ssh://root@new/srv/r"), databases=True,
                            target_dsn="host=/run/postgresql user=restorer dbname=postgres")
    lines = plans.describe(_job(PG), request)
    [line] = [x for x in lines if "pg_restore" in x]
    assert "CREATE DATABASE <name>_restored" in line and "user=restorer" in line
    assert not any("pg_restore" in x for x in plans.describe(
        _job(PG), plans.Request(parse("ssh://root@new/srv/r"))))


def test_a_target_dsn_without_databases_is_refused_before_anything_is_contacted() -> None:
    request = plans.Request(parse("ssh://root@new/srv/r"), target_dsn="user=x dbname=y")
    with pytest.raises(UsageError, match="--target-dsn goes with --databases"):
        plans.check_request(request, job="emr")
    plans.check_request(plans.Request(parse("ssh://root@new/srv/r"), databases=True,
                                      target_dsn="user=x dbname=y"), job="emr")
