"""The report model: per job and month, local days, mapping data, renderers."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import update

from backupctl.config.validate import load_config
from backupctl.evidence import reasons, render, report
from backupctl.evidence.period import Period
from backupctl.state import queries
from backupctl.state.db import Store
from backupctl.state.schema import evidence
from tests import runs, yaml_helpers

JST = timezone(timedelta(hours=9))
SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "report.schema.json").read_text())


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 31, 14, 0, tzinfo=UTC)  # 23:00 JST

    def __call__(self) -> datetime:
        return self.now


def _config(tmp_path: Path, **job: Any) -> Any:
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
        "schedule": {"backup": "*-*-* 02:00:00", "verify": "Sun *-*-* 04:00:00"}, **job}))
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
        "mode": "full", "files_checked": 120, "restore_ms": 90500, "rto_seconds": 7200,
        "mismatches": []})
    _run(store, clock, "verify", status="bad_data", details={
        "mode": "quick", "files_checked": 10, "mismatches": [
            {"path": "/srv/emr.dump", "expected": "a", "got": "b", "reason": "hash"}]})
    _run(store, clock, "drill", details={"steps": [{"name": "a"}, {"name": "b"}],
                                         "restore_ms": 300000}, operator="佐藤")
    clock.now = datetime(2026, 3, 5, tzinfo=UTC)  # outside the period
    _run(store, clock, "backup", details={"generations": 7})
    return config, store


def _build(filled: tuple[Any, Store], lang: str = "ja") -> dict[str, Any]:
    config, store = filled
    period = Period.parse("2026-02-01", "2026-02-28", tz=JST)
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
    assert reasons.say("ja", "restore_failed") in job["findings"]
    assert data["chain"]["verified"] and data["chain"]["count"] == 10


def test_dates_are_local_days(filled: tuple[Any, Store]) -> None:
    config, store = filled
    january_jst = Period.parse("2026-01-31", "2026-01-31", tz=JST)
    january_utc = Period.parse("2026-02-01", "2026-02-01", tz=UTC)
    assert report.build(config=config, store=store, period=january_jst,
                        lang="en")["records_in_period"] == 1
    assert report.build(config=config, store=store, period=january_utc,
                        lang="en")["records_in_period"] == 0


def test_an_open_tripwire_is_dated_in_the_reports_time_zone(
        filled: tuple[Any, Store]) -> None:
    _, store = filled
    with store.transaction() as conn:  # 2026-02-10 20:30 UTC is the 11th in Tokyo
        queries.raise_flag(conn, "emr-db", raised_at="2026-02-10T20:30:00+00:00",
                           reason="canary changed")

    data = _build(filled)

    tripwires = next(v for v in data["summary"]["verdicts"] if v["id"] == "tripwires")
    assert any("2026-02-11" in text for text in tripwires["reasons"]), tripwires
    assert not any("2026-02-10" in text for text in tripwires["reasons"]), tripwires
    assert any("2026-02-11 05:30" in text for text in data["jobs"][0]["findings"])


def test_a_tampered_tripwire_time_is_shown_as_stored_and_the_report_still_builds(
        filled: tuple[Any, Store]) -> None:
    _, store = filled
    with store.transaction() as conn:  # someone with write access to the state database
        queries.raise_flag(conn, "emr-db", raised_at="\x1b[2Jnot-a-time", reason="x")

    data = _build(filled)

    tripwires = next(v for v in data["summary"]["verdicts"] if v["id"] == "tripwires")
    assert not tripwires["achieved"] and len(tripwires["reasons"]) == 1, tripwires


@pytest.mark.parametrize("stamp", ["2026-02-1\x1b[2Jnot-a-time", "2026-02-11T99:00:00+00:00"])
def test_a_record_whose_time_is_not_a_time_is_named_and_the_report_still_builds(
        filled: tuple[Any, Store], stamp: str) -> None:
    _, store = filled
    with store.transaction() as conn:  # someone with write access to the state database
        conn.execute(update(evidence).where(evidence.c.kind.in_(["drill", "backup"]))
                     .values(finished_at=stamp))

    data = _build(filled)

    assert not data["chain"]["verified"] and data["chain"]["problem"]  # the chain says so
    assert data["findings"][0]["job"] is None  # first of the findings
    for fmt in ("json", "html", "csv"):
        assert render.render(data, fmt)


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
    assert data["findings"][0]["text"].startswith(reasons.say("en", "chain") + ": record seq 3")
    assert "seq 3" in data["findings"][0]["text"]


def test_each_database_shows_its_last_proven_restore(tmp_path: Path) -> None:
    config = _config(tmp_path, databases=[
        {"name": n, "kind": "postgresql", "dsn": f"dbname={n}"} for n in ("emr", "lab")])
    clock = Clock()
    clock.now = datetime(2026, 2, 10, 1, 0, tzinfo=UTC)
    store = Store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    proof = {"name": "emr", "kind": "postgresql", "mode": "full", "result": "proven",
             "tables_checked": 5, "rows_expected": 100014, "rows_restored": 100014,
             "restore_ms": 4250}
    _run(store, clock, "verify", details={"mode": "full", "databases": [proof]})
    _run(store, clock, "verify", status="bad_data", details={"mode": "quick", "databases": [
        {**proof, "mode": "quick", "result": "bad_data", "restore_ms": None}]})

    data = _build((config, store), "en")

    emr, lab = data["jobs"][0]["databases"]
    assert (emr["name"], emr["tests"], emr["failed"], emr["last_result"]) == (
        "emr", 2, 1, "bad_data")
    last = emr["last_proven_restore"]
    assert (last["tables"], last["rows"], last["restore_seconds"], last["kind"]) == (
        5, 100014, 4.25, "verify")
    assert lab == {"name": "lab", "tests": 0, "failed": 0, "last_result": None,
                   "last_proven_restore": None}
    assert ("no restore of database lab was proven in the period (verify --mode full)"
            in data["jobs"][0]["findings"])
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(render.render(data, "json")))
    body = "".join(ET.fromstring(render.html(data)).itertext())
    assert "Last proven restore" in body and "100014" in body


def test_html_shows_times_in_the_configured_zone_to_the_minute(
        filled: tuple[Any, Store]) -> None:
    from zoneinfo import ZoneInfo

    config, store = filled
    period = Period.parse("2026-02-01", "2026-02-28", tz=ZoneInfo("Asia/Tokyo"))
    data = report.build(config=config, store=store, period=period, lang="ja",
                        now=datetime(2026, 3, 1, tzinfo=UTC))
    assert data["period"]["timezone"] == "Asia/Tokyo"
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(render.render(data, "json")))
    body = "".join(ET.fromstring(render.html(data)).itertext())
    assert "Asia/Tokyo, UTC+09:00" in body and "UTC+0900" not in body
    assert "2026-02-10 10:30" in body  # the full restore test ended 01:30 UTC
    assert "2026-02-10T10:30" not in body and "+09:00" not in body.replace("UTC+09:00", "")
    assert "1分30秒" in body  # its restore time, in the report's language


def test_recoveries_are_listed_counted_and_summarised(filled: tuple[Any, Store]) -> None:
    """A recovery onto a replacement server is in the report like a drill: its target
    (credentials masked), snapshot, operator and measured time; months, totals, the CSV and
    the management summary count it; a failed one is an event the schema accepts."""
    store = filled[1]
    clock = store.clock
    assert isinstance(clock, Clock)
    clock.now = datetime(2026, 2, 20, 1, 0, tzinfo=UTC)
    _run(store, clock, "recovery", status="bad_data", operator="田中", details={
        "result": "fail", "target": "ssh://root:hunter2@new-host:22/srv", "files": 40,
        "mismatches": [{"path": "/srv/emr.dump", "reason": "hash"}], "restore_ms": 61000,
        "error": "mismatch"})
    _run(store, clock, "recovery", operator="田中", details={
        "result": "pass", "target": "ssh://root@new-host:22/srv", "files": 40,
        "restore_ms": 754000})
    data = _build(filled, "en")
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(render.render(data, "json")))
    (job,) = data["jobs"]
    failed, proven = job["recoveries"]
    assert "hunter2" not in failed["target"] and "new-host" in failed["target"]
    assert (failed["result"], failed["mismatches"]) == ("fail", 1)
    assert (proven["operator"], proven["snapshot_id"], proven["restore_seconds"],
            proven["files"], proven["result"]) == ("田中", "abcdef12", 754.0, 40, "pass")
    assert (job["months"][0]["recoveries"], job["totals"]["recoveries_failed"]) == (2, 1)
    assert any(e["kind"] == "recovery" for e in job["events"])
    drills = next(v for v in data["summary"]["verdicts"] if v["id"] == "drills")
    assert "2 recoveries onto a replacement server (1 proven)" in drills["evidence"]
    counted = {i["id"]: (i["evidence"], i["count"]) for i in data["mapping"]}
    assert counted["drills"][0] == ["drill", "recovery"] and counted["drills"][1] >= 2
    assert counted["restore-tests"][0] == ["verify", "recovery"]
    assert counted["restore-tests"][1] == job["totals"]["restore_tests"] + 2
    body = "".join(ET.fromstring(render.html(data)).itertext())
    assert "Recoveries onto a replacement server" in body and "new-host" in body
    rows = list(csv.reader(io.StringIO(render.render(data, "csv").decode("utf-8-sig"))))
    assert rows[1][rows[0].index("recoveries")] == "2"
