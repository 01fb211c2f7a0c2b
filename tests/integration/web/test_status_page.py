"""The status page in a real browser: headless Chromium loads `/` from a real `backupctl
exporter` process over a real state database seeded with a month of runs (SPEC §13).

Screenshots at desktop and phone widths stay in the test's tmp dir as artifacts."""

from __future__ import annotations

import base64
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from backupctl.state.db import Store
from backupctl.state.records import BackupDetails, VerifyDetails
from tests import runs
from tests.conftest import Workspace, need
from tests.integration.metrics.conftest import Exporter, http_get

DESKTOP = (1280, 900)
PHONE = (390, 844)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def seed(ws: Workspace) -> None:
    """emr-db: a month of daily backups and weekly restore tests at noon in Tokyo (one day
    failed, then made good), the newest two hours ago; pacs: its last backup failed; lab:
    never ran."""
    now = datetime.now(UTC)
    clock = Clock(now)
    store = Store(f"sqlite:///{ws.state_dir / 'state.db'}", clock=clock)
    for day in range(30, 0, -1):
        noon_in_tokyo = datetime.combine(now.date() - timedelta(days=day),
                                         datetime.min.time(), UTC) + timedelta(hours=3)
        clock.now = noon_in_tokyo
        failed = day == 12
        runs.record(store, job="emr-db", status="failed" if failed else "success",
                    error=f"cannot read {ws.root}/src/emr-db/患者.txt" if failed else None,
                    details=BackupDetails(duration_ms=4200, bytes_added=10))
        if failed:
            clock.now += timedelta(hours=1)
            runs.record(store, job="emr-db", details=BackupDetails(duration_ms=4200))
        if day % 7 == 1:
            clock.now += timedelta(minutes=30)
            runs.record(store, job="emr-db", kind="verify", details=VerifyDetails(
                mode="full", files_checked=10))
        clock.now += timedelta(minutes=40)
        runs.record(store, job="emr-db", kind="copy", repository="usb")
    clock.now = now - timedelta(hours=2)
    runs.record(store, job="emr-db", details=BackupDetails(duration_ms=4200))
    clock.now = now - timedelta(hours=5)
    runs.record(store, job="pacs", status="failed", error="ssh: connection lost (timeout)")


@pytest.fixture
def site(workspace: Workspace) -> Workspace:
    usb = workspace.root / "usb"
    workspace.job("emr-db", copies=[{"name": "usb", "kind": "offline", "url": str(usb),
                                     "password_file": str(workspace.password_file()),
                                     "max_age": "7d"}],
                  verify={"rto": "4h"}, schedule={"copy": "*-*-* 05:00:00"})
    workspace.job("pacs")
    workspace.job("lab")
    workspace.write_config(timezone="Asia/Tokyo")
    workspace.state_dir.mkdir(mode=0o700, exist_ok=True)
    seed(workspace)
    return workspace


@pytest.fixture
def exporter(site: Workspace, exporter_factory: Callable[[Workspace], Exporter]) -> Exporter:
    return exporter_factory(site)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """`browser(url, screenshot=PATH, size=(w, h), lang="en")`: the DOM after load."""
    binary = need("chromium")

    def load(url: str, *, screenshot: Path | None = None,
             size: tuple[int, int] = DESKTOP, lang: str | None = None) -> str:
        argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--no-first-run", "--disable-extensions", "--disable-sync",
                f"--user-data-dir={tmp_path / 'chromium-profile'}",
                f"--window-size={size[0]},{size[1]}"]
        if lang is not None:
            argv.append(f"--accept-lang={lang}")
        argv += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
        done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        if screenshot is not None:
            assert screenshot.stat().st_size > 10_000, done.stderr[-2000:]
        return done.stdout

    yield load


class Dom(HTMLParser):
    """What the tests look for in the DOM Chromium built."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def attr(self, tag: str, name: str) -> list[str | None]:
        return [a.get(name) for t, a in self.tags if t == tag and name in a]

    def cards(self) -> list[tuple[str | None, str | None]]:
        return [(a.get("data-job"), a.get("data-level")) for t, a in self.tags
                if t == "article"]

    @property
    def words(self) -> str:
        return " ".join(self.text)


def test_chromium_renders_the_page_in_japanese_with_every_job(
        exporter: Exporter, site: Workspace, browser: Callable[..., str],
        tmp_path: Path) -> None:
    dom = Dom(browser(exporter.url + "/", lang="ja"))  # a Japanese browser's Accept-Language
    assert dom.attr("html", "lang") == ["ja"]
    verdict = [a for t, a in dom.tags if a.get("id") == "verdict"]
    assert verdict and verdict[0]["data-level"] == "failing"
    assert "2 件のジョブに対応が必要です（失敗 1、遅延 1）" in dom.words
    assert dom.cards() == [("pacs", "failing"), ("lab", "overdue"), ("emr-db", "ok")]
    assert "最後のバックアップが失敗: コマンドが制限時間内に終わりませんでした" in dom.words
    assert "まだ一度もバックアップしていません" in dom.words
    emr = dom.words[dom.words.index("emr-db"):]
    assert "時間前" in emr and "完全（全体を復元）" in emr and "usb（オフライン）" in emr
    assert not [t for t, _ in dom.tags if t in ("form", "script", "input", "button")]
    assert str(site.root) not in dom.words and "患者" not in dom.words
    assert "src/emr-db" not in dom.words and "/repos/" not in dom.words
    # a day with a failed backup that a later run made good, and a day with nothing run
    titles = [t for t in dom.attr("li", "title") if t]
    assert len(titles) == 3 * 60
    assert any(t.endswith("失敗あり（後に成功）") for t in titles)
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        browser(exporter.url + "/?lang=ja", screenshot=tmp_path / f"status-ja-{name}.png",
                size=size)


def test_chromium_gets_english_by_accept_language_and_by_the_query(
        exporter: Exporter, browser: Callable[..., str], tmp_path: Path) -> None:
    for dom in (Dom(browser(exporter.url + "/", lang="en-US,en")),
                Dom(browser(exporter.url + "/?lang=en"))):
        assert dom.attr("html", "lang") == ["en"]
        assert "need action" in dom.words and "Never backed up yet" in dom.words
        assert "hours ago" in dom.words and "Asia/Tokyo, UTC+09:00" in dom.words
        assert [job for job, _ in dom.cards()] == ["pacs", "lab", "emr-db"]
    browser(exporter.url + "/?lang=en", screenshot=tmp_path / "status-en-desktop.png")
    browser(exporter.url + "/?lang=en", screenshot=tmp_path / "status-en-phone.png",
            size=PHONE)


def test_the_page_is_read_only_and_sends_its_security_headers(exporter: Exporter) -> None:
    with urllib.request.urlopen(exporter.url + "/", timeout=30) as response:
        headers = response.headers
        assert response.status == 200
        assert headers["Content-Type"] == "text/html; charset=utf-8"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "script" not in csp
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    request = urllib.request.Request(exporter.url + "/", data=b"x=1", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 405 and refused.value.headers["Allow"] == "GET, HEAD"


def test_basic_auth_refuses_without_the_password_and_accepts_with_it(
        site: Workspace, exporter_factory: Callable[[Workspace], Exporter]) -> None:
    secret = site.root / "web.pw"
    secret.write_text("Kennwort-9\n")
    secret.chmod(0o600)
    site.write_config(timezone="Asia/Tokyo", web_password_file=str(secret))
    exporter = exporter_factory(site)
    status, body = http_get(exporter.url + "/")
    assert status == 401 and b"emr-db" not in body
    for wrong in ("admin:nope", "admin:", "Kennwort-9"):
        request = urllib.request.Request(exporter.url + "/", headers={
            "Authorization": "Basic " + base64.b64encode(wrong.encode()).decode()})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 401
    request = urllib.request.Request(exporter.url + "/", headers={
        "Authorization": "Basic " + base64.b64encode(b"anyone:Kennwort-9").decode()})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200 and b'data-job="emr-db"' in response.read()
    assert http_get(exporter.url + "/metrics")[0] == 200  # Prometheus scrapes as before
    assert re.search(rb"Kennwort", exporter.log.read_bytes()) is None
