"""Several orchestrators on a real PostgreSQL: the page says who runs a job right now (a live
lease) and who ran its last backup, from the same read-only snapshot as the metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backupctl.state.db import Store
from backupctl.state.leases import PgLeases
from backupctl.state.records import BackupDetails
from backupctl.state.view import StateReader
from backupctl.web.page import StatusPage
from tests import runs
from tests.conftest import Postgres
from tests.integration.state.lease_worker import TEST_SETTINGS
from tests.unit.metrics.conftest import make_job
from tests.unit.web.conftest import fixed_schedules, settings


def _page(app: StatusPage) -> str:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    body = b"".join(app({"PATH_INFO": "/", "REQUEST_METHOD": "GET",
                         "QUERY_STRING": "lang=en"}, start_response)).decode()
    assert seen["status"] == "200 OK", body
    return body


def test_the_card_names_the_orchestrator_running_the_job_now(
        postgres: Postgres, tmp_path: Path) -> None:
    url = postgres.empty_url()
    store = Store(url, orchestrator="backup01")
    runs.record(store, job="emr", details=BackupDetails(duration_ms=1000))
    jobs = [make_job("emr"), make_job("pacs")]
    config = settings(tmp_path)
    reader = StateReader(url)
    app = StatusPage(config=lambda: config, jobs=lambda: jobs, reader=reader,
                     schedules=fixed_schedules())
    try:
        idle = _page(app)
        with PgLeases(url, "backup02", settings=TEST_SETTINGS).hold("emr", kind="verify"):
            busy = _page(app)
    finally:
        reader.close()
    emr = busy[busy.index('data-job="emr"'):]
    emr = emr[:emr.index("</article>")]
    assert "running on backup02 (restore test, since " in emr
    assert "<dt>Orchestrator</dt><dd" in emr and "backup01</dd>" in emr
    assert "running on" not in idle
    pacs = busy[busy.index('data-job="pacs"'):]
    assert "running on" not in pacs[:pacs.index("</article>")]
