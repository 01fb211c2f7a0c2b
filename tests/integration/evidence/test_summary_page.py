"""The one-page management summary, rendered for real (WeasyPrint, poppler's tools)."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from backupctl.config.validate import Config, load_config
from backupctl.evidence import render, report
from backupctl.evidence.period import Period
from backupctl.state.db import Store
from backupctl.state.records import MODELS, Proof
from tests import runs, yaml_helpers
from tests.conftest import need
from tests.unit.evidence.test_report import SCHEMA

JST = timezone(timedelta(hours=9))
PATIENT_PATH = "/srv/emr/患者/山田太郎.pdf"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 31, 17, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def site(root: Path) -> Config:
    """Three servers: EMR (all good), PACS (restore test failing, slow), file server."""
    (root / "jobs").mkdir(parents=True)
    pw = root / "pw"
    pw.write_text("x\n")
    (root / "kh").touch()
    (root / "backupctl.yaml").write_text(yaml_helpers.dump({
        "jobs_dir": str(root / "jobs"), "state_dir": str(root / "state"),
        "scratch_dir": str(root / "scratch"), "known_hosts": str(root / "kh")}))
    usb = {"name": "usb", "kind": "offline", "url": "/mnt/usb", "password_file": str(pw),
           "max_age": "7d"}
    for name, description, rto, copies in (
            ("emr-db", "電子カルテDBサーバ", "2h", [usb]),
            ("pacs", "PACS画像サーバ", "1h", [usb]),
            ("fileserver", "ファイルサーバ", None, [])):
        data: dict[str, Any] = {
            "job": name, "description": description, "host": {"address": "local"},
            "source": {"paths": ["/srv"]}, "repository": {"url": "/r", "password_file": str(pw)},
            "generations": {"last": 7, "daily": 14}, "copies": copies,
            "schedule": {"backup": "*-*-* 02:00:00", "copy": "*-*-* 03:00:00",
                         "verify": "Sun *-*-* 04:00:00"}}
        if rto:
            data["verify"] = {"rto": rto}
        (root / "jobs" / f"{name}.yaml").write_text(yaml_helpers.dump(data))
    return load_config(root / "backupctl.yaml")


def _run(store: Store, clock: Clock, job: str, kind: str, *, at: datetime,
         status: str = "success", repository: str = "primary",
         details: dict[str, Any] | None = None, minutes: int = 20) -> None:
    clock.now = at
    run_id = runs.start(store, job=job, kind=kind, repository=repository)
    clock.now = at + timedelta(minutes=minutes)
    model = MODELS[kind].model_validate(details or {})
    runs.finish(store, run_id, status=status, details=model, snapshot_id="abcdef12",
                error=None if status == "success" else f"mismatch {PATIENT_PATH}",
                restore_ms=model.restore_ms if isinstance(model, Proof) else None)


def fill(store: Store, clock: Clock) -> None:
    """February 2026: nightly backups, copies, weekly full restore tests, one drill."""
    start = datetime(2026, 1, 31, 17, 0, tzinfo=UTC)  # 02:00 JST on 1 Feb
    for day in range(28):
        at = start + timedelta(days=day)
        for job in ("emr-db", "pacs", "fileserver"):
            if job == "fileserver" and 10 <= day <= 13:
                continue  # the file server was off for four nights
            _run(store, clock, job, "backup", at=at, details={"generations": min(day + 3, 14)})
        for job in ("emr-db", "pacs"):
            _run(store, clock, job, "copy", at=at + timedelta(hours=1), repository="usb")
        if day % 7 == 0:
            restore = {"emr-db": 2400 + day * 30, "pacs": 2900 + day * 60,
                       "fileserver": 600}
            for job, seconds in restore.items():
                bad = job == "pacs" and day == 21
                _run(store, clock, job, "verify", at=at + timedelta(hours=2),
                     status="bad_data" if bad else "success", details={
                         "mode": "full", "files_checked": 1200, "restore_seconds": seconds,
                         "rto_seconds": {"emr-db": 7200, "pacs": 3600}.get(job),
                         "mismatches": [{"path": PATIENT_PATH, "reason": "hash"}] if bad else []})
    _run(store, clock, "emr-db", "drill", at=start + timedelta(days=15, hours=8),
         details={"steps": [{"name": "a"}], "restore_seconds": 3000})


@pytest.fixture
def summary_report(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    config = site(tmp_path / "etc")
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    fill(store, clock)
    period = Period.parse("2026-02-01", "2026-02-28", tz=JST)
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    return tuple(report.build(config=config, store=store, period=period, lang=lang, now=now)
                 for lang in ("ja", "en"))  # type: ignore[return-value]


def test_verdicts_follow_the_records(summary_report: tuple[dict[str, Any], ...]) -> None:
    ja, _ = summary_report
    jsonschema.validate(ja, SCHEMA)
    verdicts = {v["id"]: v for v in ja["summary"]["verdicts"]}
    assert verdicts["backups"]["achieved"]  # every newest backup passed
    assert not verdicts["offline-copies"]["achieved"]  # the file server has no copy
    assert not verdicts["restore-tests"]["achieved"]  # pacs: newest test bad data
    assert verdicts["drills"]["achieved"] and verdicts["evidence-integrity"]["achieved"]
    assert verdicts["restore-tests"]["verdict"] == "要対応"
    assert verdicts["backups"]["verdict"] == "達成"
    texts = [f["text"] for f in ja["summary"]["findings"]]
    assert any("オフライン" in t for t in texts) and any("リストア試験" in t for t in texts)
    assert PATIENT_PATH not in str(ja["summary"])


def _pdf(data: dict[str, Any], tmp_path: Path, name: str) -> Path:
    out = tmp_path / f"{name}.pdf"
    out.write_bytes(render.render(data, "pdf", summary_only=True))
    return out


def test_summary_pdf_is_one_page_with_verdicts_and_an_embedded_japanese_font(
        summary_report: tuple[dict[str, Any], ...], tmp_path: Path) -> None:
    ja, en = summary_report
    pdf = _pdf(ja, tmp_path, "summary-ja")
    info = subprocess.run([need("pdfinfo"), str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M), info
    text = subprocess.run([need("pdftotext"), "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "達成" in text and "要対応" in text
    assert "電子カルテDBサーバ" in text and "復旧訓練" in text
    assert PATIENT_PATH not in text and "山田" not in text
    fonts = subprocess.run([need("pdffonts"), str(pdf)], capture_output=True, text=True,
                           check=True).stdout
    assert "IPAGothic" in fonts, fonts
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:]
               if "IPAGothic" in line), fonts  # embedded
    english = subprocess.run([need("pdftotext"), str(_pdf(en, tmp_path, "summary-en")), "-"],
                             capture_output=True, text=True, check=True).stdout
    assert "Achieved" in english and "Action needed" in english


def test_full_pdf_starts_with_the_summary_page(summary_report: tuple[dict[str, Any], ...],
                                               tmp_path: Path) -> None:
    ja, _ = summary_report
    pdf = tmp_path / "full.pdf"
    pdf.write_bytes(render.render(ja, "pdf"))
    first = subprocess.run([need("pdftotext"), "-f", "1", "-l", "1", str(pdf), "-"],
                           capture_output=True, text=True, check=True).stdout
    second = subprocess.run([need("pdftotext"), "-f", "2", "-l", "2", str(pdf), "-"],
                            capture_output=True, text=True, check=True).stdout
    assert "経営層向け" in first and "要対応" in first
    assert "監査証跡報告書" in second
