"""A lost lease stops its own job only (issue #25): in a `backup --all` over PostgreSQL, the
database ends one job's lease session (a DBA, a failover) while both jobs run; that job's
hook is killed and its run recorded interrupted naming the lost lease, the other job's
backup finishes and succeeds."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import Postgres, Workspace
from tests.integration.cli.test_fleet import Fleet, _jobs

HOOK_SECONDS = 12  # each job's `before` hook: long enough to lose a lease meanwhile


@pytest.fixture
def fleet(workspace: Workspace, postgres: Postgres) -> Fleet:
    postgres.empty_url()
    return Fleet(workspace, postgres)


def test_a_lost_lease_stops_its_job_and_no_other(fleet: Fleet) -> None:
    first, second = _jobs(fleet.ws, 2, before=[f"sleep {HOOK_SECONDS}"])
    proc = fleet.start("backup01", "backup", "--all", "--json")
    deadline = time.monotonic() + 60
    while len(fleet.rows("SELECT pid FROM pg_stat_activity "
                         "WHERE application_name LIKE 'backupctl lease %'")) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
        time.sleep(0.2)
    started = time.monotonic()
    fleet.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               f"WHERE application_name = 'backupctl lease {first}'")
    stdout, stderr = proc.communicate(timeout=300)

    assert proc.returncode == 1, stderr
    by_job = {r["job"]: r for r in json.loads(stdout)["jobs"]}
    assert by_job[second]["status"] == "ok", by_job[second]
    assert "lease lost" in (by_job[first]["error"] or "")
    runs = dict(fleet.rows("SELECT job, status FROM runs WHERE kind = 'backup'"))
    assert runs == {first: "interrupted", second: "success"}
    [(error,)] = fleet.rows(f"SELECT error FROM runs WHERE job = '{first}'")
    assert "lease lost" in error
    # the first job's hook was killed, not waited for: its run ended before the second's
    [(finished_first,)] = fleet.rows(f"SELECT finished_at FROM runs WHERE job = '{first}'")
    [(finished_second,)] = fleet.rows(f"SELECT finished_at FROM runs WHERE job = '{second}'")
    assert finished_first < finished_second
    assert time.monotonic() - started < 300
