"""The report model: per job and month, stragglers in the slice, mapping data, renderers."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from backupctl.config.validate import load_config
from backupctl.errors import UsageError
from backupctl.evidence import chain, render, report
from backupctl.state.db import Store
from tests import runs, yaml_helpers

JST = timezone(timedelta(hours=9))
SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "report.schema.json").read_text())


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 31, 14, 0, tzinfo=UTC)  # 23:00 JST

    def __call__(self) -> datetime:
        return self.now


def _config(tmp_path: Path) -> Any:
    (tmp_path / "jobs").mkdir()
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    (tmp_path / "backupctl.yaml").write_text(yaml_helpers.dump({
        "jobs_dir": str(tmp_path / "jobs"), "state_dir": str(tmp_path / "state"),
        "scratch_dir": str(tmp_path / "scratch"), "known_hosts": str(tmp_path / "kh")}))
    (tmp_path / "kh").touch()
    (tmp_path / "jobs" / "emr-db.yaml").write_text(yaml_helpers.dump({
        "job": "emr-db", "description": "電子カルテDBサーバ", "host": {"address": "local"},
        "source": {"paths": ["/srv"]},
        "repository": {"url": "/repo", "password_file": str(pw)},
        "generations": {"last": 7, "daily": 14}, "verify": {"rto": "2h"},
        "copies": [{"name": "usb", "kind": "offline", "url": "/mnt/usb", "password_file": str(pw),
                    "max_age": "7d"}],
        "schedule": {"backup": "*-*-* 02:00:00", "verify": "Sun *-*-* 04:00:00"}}))
    return load_config(tmp_path / "backupctl.yaml")


def _run(store: Store, clock: Clock, kind: str, *, status: str = "success",
         repository: str = "primary", details: dict[str, Any] | None = None,
         operator: str = "scheduler") -> None:
    run_id = runs.start(store, job="emr-db", kind=kind, repository=repository,
                        operator=operator)
    clock.now += timedelta(minutes=5)
    runs.finish(store, run_id, status=status, snapshot_id="abcdef12",
                evidence_details=details or {})


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Any, Store]:
    config = _config(tmp_path)
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    _run(store, clock, "backup", details={"generations": 5})  # 2026-01-31 JST
    clock.now = datetime(2026, 2, 10, 1, 0, tzinfo=UTC)
    _run(store, clock, "backup", details={"generations": 6})
    _run(store, clock, "backup", status="failed", details={"error": "restic failed"})
    _run(store, clock, "backup", status="bad_data",
         details={"generations": 6, "suspicious": ["canary changed: /srv/.canary"]})
    _run(store, clock, "clear", details={"reason": "誤検知（ウイルス対策ソフト）"},
         operator="山田")
    _run(store, clock, "copy", repository="usb", details={"medium": {"label": "disk-A"}})
    _run(store, clock, "verify", details={
        "mode": "full", "files_checked": 120, "restore_seconds": 90.5, "rto_seconds": 7200,
        "mismatches": []})
    _run(store, clock, "verify", status="bad_data", details={
        "mode": "quick", "files_checked": 10, "mismatches": [
            {"path": "/srv/emr.dump", "expected": "a", "got": "b", "reason": "hash"}]})
    _run(store, clock, "drill", details={"steps": [{"name": "a"}, {"name": "b"}],
                                         "restore_seconds": 300}, operator="佐藤")
    clock.now = datetime(2026, 3, 5, tzinfo=UTC)  # outside the period
    _run(store, clock, "backup", details={"generations": 7})
    return config, store


def _build(filled: tuple[Any, Store], lang: str = "ja") -> dict[str, Any]:
    config, store = filled
    period = report.Period.parse("2026-02-01", "2026-02-28", tz=JST)
    return report.build(config=config, store=store, period=period, lang=lang,
                        now=datetime(2026, 3, 1, tzinfo=UTC))


def test_counts_per_job_and_month(filled: tuple[Any, Store]) -> None:
    data = _build(filled)
    (job,) = data["jobs"]
    assert job["description"] == "電子カルテDBサーバ"
    assert [m["month"] for m in job["months"]] == ["2026-02"]
    (month,) = job["months"]
    assert (month["backups"], month["backups_failed"], month["generations"]) == (3, 2, 6)
    assert (month["restore_tests"], month["restore_tests_failed"]) == (2, 1)
    assert (month["files_checked"], month["mismatches"]) == (130, 1)
    assert (month["max_restore_seconds"], month["rto_seconds"]) == (90.5, 7200)
    assert (month["drills"], month["suspicious"], month["clears"], month["copies"]) == (
        1, 1, 1, 1)
    assert data["records_in_period"] == 8  # January's and March's backups are outside
    assert job["copies"][0]["medium"] == "disk-A"
    assert job["restore_tests"][1]["mismatch_paths"] == ["/srv/emr.dump"]
    assert job["drills"][0]["operator"] == "佐藤"
    assert any(e["kind"] == "clear" and "誤検知" in e["what"] for e in job["events"])
    assert "最新のリストア試験が不合格です" in job["findings"]
    assert data["chain"]["verified"] and data["chain"]["count"] == 10


def test_dates_are_local_days(filled: tuple[Any, Store]) -> None:
    config, store = filled
    january_jst = report.Period.parse("2026-01-31", "2026-01-31", tz=JST)
    january_utc = report.Period.parse("2026-02-01", "2026-02-01", tz=UTC)
    assert report.build(config=config, store=store, period=january_jst,
                        lang="en")["records_in_period"] == 1
    assert report.build(config=config, store=store, period=january_utc,
                        lang="en")["records_in_period"] == 0


def test_slice_keeps_stragglers_so_it_links() -> None:
    def entry(seq: int, finished: str) -> chain.Entry:
        return chain.Entry(seq, {"finished_at": finished, "hash": str(seq)})

    entries = [entry(1, "2026-01-31T23:00:00+00:00"), entry(2, "2026-02-01T00:00:01+00:00"),
               entry(3, "2026-01-31T23:59:59+00:00"), entry(4, "2026-02-01T12:00:00+00:00"),
               entry(5, "2026-02-02T00:00:00+00:00")]
    period = report.Period(date(2026, 2, 1), date(2026, 2, 1), UTC)
    # seq 3 finished before the period but was appended inside it: kept, so 2→3→4 links.
    assert [e.seq for e in report.slice_for(entries, period)] == [2, 3, 4]


def test_bad_dates_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        report.Period.parse("2026-02-30", "2026-03-01")
    with pytest.raises(UsageError):
        report.Period.parse("2026-03-01", "2026-02-01")


def test_mapping_covers_every_framework_for_every_item() -> None:
    data = report.mapping()
    ids = {f["id"] for f in data["frameworks"]}
    assert ids == {"mhlw", "checklist", "iso27001", "hipaa", "cis"}
    for item in data["items"]:
        assert set(item["requirements"]) == ids, item["id"]
        for reqs in item["requirements"].values():
            assert all(r["ref"] and r["text"]["ja"] and r["text"]["en"] for r in reqs)
    refs = {r["ref"] for item in data["items"] for r in item["requirements"]["iso27001"]}
    assert "A.8.13" in refs
    restore = next(i for i in data["items"] if i["id"] == "restore-tests")
    assert restore["requirements"]["hipaa"][0]["ref"] == "164.308(a)(7)(ii)(D)"
    assert restore["requirements"]["cis"][0]["ref"] == "11.5"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_json_matches_the_shipped_schema(filled: tuple[Any, Store], lang: str) -> None:
    data = json.loads(render.render(_build(filled, lang), "json"))
    jsonschema.Draft202012Validator(SCHEMA).validate(data)


def test_schema_rejects_drift(filled: tuple[Any, Store]) -> None:
    data = _build(filled)
    data["jobs"][0]["months"][0]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


def test_html_is_well_formed_and_escaped(filled: tuple[Any, Store]) -> None:
    data = _build(filled)
    data["jobs"][0]["description"] = "<script>alert(1)</script> & 電子カルテ"
    text = render.html(data)
    root = ET.fromstring(text)
    body = "".join(root.itertext())
    assert "<script>" in body and not root.findall(".//{http://www.w3.org/1999/xhtml}script")
    assert "要求事項との対応" in body and "A.8.13" in body
    assert "built-in method" not in body and "複製先" in body  # labels are items, not attrs


def test_csv_has_a_bom_and_one_row_per_job_month(filled: tuple[Any, Store]) -> None:
    raw = render.render(_build(filled), "csv")
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "ジョブ" and len(rows) == 2
    assert rows[1][:4] == ["emr-db", "電子カルテDBサーバ", "2026-02", "3"]


def test_a_broken_chain_is_the_first_finding(filled: tuple[Any, Store]) -> None:
    _, store = filled
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE evidence SET result = 'pass' WHERE seq = 3")
    data = _build(filled, "en")
    assert not data["chain"]["verified"]
    assert data["findings"][0]["text"].startswith("The evidence hash chain does not verify")
    assert "seq 3" in data["findings"][0]["text"]
