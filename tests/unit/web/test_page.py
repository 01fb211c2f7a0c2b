"""The status page as a WSGI application: language, password, facts on the cards, no leaks."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from backupctl.execute import Secret
from backupctl.state.recovery import RecoveryDetails
from backupctl.web.page import StatusPage, authorized, negotiate
from tests import runs
from tests.unit.metrics.conftest import Fleet
from tests.unit.web.conftest import fixed_schedules, settings


def get(app: StatusPage, path: str = "/", **environ: str) -> tuple[str, dict[str, str], str]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET", **environ},
                        start_response))
    return seen["status"], seen["headers"], body.decode()


@pytest.mark.parametrize(("query", "accept", "lang"), [
    ("", "", "ja"), ("lang=en", "", "en"), ("", "en-US,en;q=0.9", "en"),
    ("", "fr, en;q=0.5, ja;q=0.8", "ja"), ("lang=ja", "en", "ja"), ("lang=de", "en", "en"),
    ("", "de, fr", "ja"), ("", "en;q=0, ja;q=bad", "ja"),
])
def test_language_from_the_query_then_accept_language(query: str, accept: str,
                                                      lang: str) -> None:
    assert negotiate(query, accept) == lang


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_takes_any_user_and_the_password_only() -> None:
    secret = Secret("pässwort")
    assert authorized("", None)
    assert authorized(_basic("anyone", "pässwort"), secret)
    assert not authorized("", secret)
    assert not authorized(_basic("anyone", "wrong"), secret)
    assert not authorized("Basic !!!", secret)
    assert not authorized("Bearer pässwort", secret)
    assert not authorized("Basic " + base64.b64encode(b"nocolon").decode(), secret)


def test_the_page_needs_the_password_when_one_is_set(fleet: Fleet, tmp_path: Path) -> None:
    config = settings(tmp_path)
    app = StatusPage(config=lambda: config, jobs=lambda: fleet.jobs,
                     reader=fleet.source().reader, clock=fleet.clock,
                     schedules=fixed_schedules(), password=Secret("s3cret"))
    status, headers, body = get(app)
    assert status == "401 Unauthorized" and headers["WWW-Authenticate"].startswith("Basic ")
    assert "ok" not in body
    assert get(app, "/static/status.css")[0] == "401 Unauthorized"
    assert get(app, HTTP_AUTHORIZATION=_basic("x", "s3cret"))[0] == "200 OK"


def test_the_japanese_page_leads_with_the_verdict_and_orders_the_cards(
        page: StatusPage) -> None:
    status, headers, body = get(page)
    assert status == "200 OK" and headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<html lang="ja">' in body
    verdict = re.search(r'<p class="verdict[^>]*data-level="(\w+)"[^>]*>(.*?)</p>', body)
    assert verdict is not None and verdict.group(1) == "suspicious"
    assert "5 件のジョブに対応が必要です" in verdict.group(2)
    jobs = re.findall(r'data-job="([\w-]+)" data-level="(\w+)"', body)
    assert jobs == [("ransom", "suspicious"), ("broken", "failing"), ("failed", "failing"),
                    ("never", "overdue"), ("ok", "attention")]
    assert body.index('id="verdict"') < body.index('data-job="ransom"')


def test_cards_show_local_times_ages_modes_and_copies(page: StatusPage) -> None:
    body = get(page, QUERY_STRING="lang=en")[2]
    assert '<html lang="en">' in body
    ok = body[body.index('data-job="ok"'):]
    # the fleet's clock is 2026-11-21 08:00 UTC; the ok job's backup ended at 02:00 UTC on
    # the 20th: 11:00 in Asia/Tokyo, 30 hours earlier
    assert "2026-11-20 11:00 (1 day ago)" in ok
    assert "full restore, primary" not in ok and "quick, usb" in ok
    assert "usb (offline)" in ok and "worm (immutable)" in ok
    assert "immutability proven" in ok
    assert "Asia/Tokyo, UTC+09:00" in body


def test_the_strip_has_thirty_days_with_words_not_only_colour(page: StatusPage) -> None:
    body = get(page)[2]
    ok = body[body.index('data-job="ok"'):]
    ok = ok[:ok.index("</article>")]
    cells = re.findall(r'<li class="d-(\w+)" title="([^"]+)">', ok)
    assert len(cells) == 60
    assert cells[29] == ("none", "2026-11-21 実行なし")
    assert cells[28] == ("ok", "2026-11-20 成功")
    assert cells[58] == ("ok", "2026-11-20 成功")  # the restore tests of that day


def _restore_row(page: StatusPage) -> list[tuple[str, str]]:
    body = get(page, QUERY_STRING="lang=en")[2]
    ok = body[body.index('data-job="ok"'):]
    return re.findall(r'<li class="d-(\w+)" title="([^"]+)">', ok[:ok.index("</article>")])[30:]


def test_recoveries_and_drills_onto_a_spare_server_count_in_the_restore_row(
        page: StatusPage, fleet: Fleet) -> None:
    before = _restore_row(page)
    fleet.clock.at(29)
    run_id = runs.start(fleet.store, job="ok", kind="recovery", operator="yamada")
    runs.finish(fleet.store, run_id, status="bad_data", evidence=False,
                details=RecoveryDetails(result="fail", operator="yamada"))
    fleet.clock.at(30)

    after = _restore_row(page)

    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1][0] in ("failed", "mixed"), changed


def test_no_form_no_script_no_url_no_error_text(page: StatusPage, fleet: Fleet) -> None:
    for lang in ("ja", "en"):
        body = get(page, QUERY_STRING=f"lang={lang}")[2]
        assert "<form" not in body and "<script" not in body and " style=" not in body
        assert "/srv/" not in body and "/mnt/usb" not in body and "vault" not in body
        assert "/repo/" not in body


def test_the_style_sheet_is_served_from_the_package(page: StatusPage) -> None:
    status, headers, body = get(page, "/static/status.css")
    assert status == "200 OK" and headers["Content-Type"] == "text/css; charset=utf-8"
    assert ".verdict" in body


def test_an_unreadable_state_says_so_with_503(fleet: Fleet, tmp_path: Path) -> None:
    config = settings(tmp_path)
    app = StatusPage(config=lambda: config, jobs=lambda: fleet.jobs,
                     reader=fleet.source(url=f"sqlite:///{tmp_path / 'gone.db'}").reader,
                     clock=fleet.clock, schedules=fixed_schedules())
    status, _, body = get(app, QUERY_STRING="lang=en")
    assert status == "503 Service Unavailable"
    assert "The state database cannot be read" in body and "data-job" not in body


def test_an_invalid_job_file_is_shown_failing_by_its_name_never_its_path(
        fleet: Fleet, tmp_path: Path) -> None:
    """Issue 29: a job file that does not validate is a job nobody backs up; the page says so
    (the other jobs keep their cards) and counts it in the site's verdict."""
    from backupctl.config.load import Problem
    from backupctl.config.validate import InvalidJobFile

    path = tmp_path / "jobs" / "pacs.yaml"
    config = replace(settings(tmp_path), invalid=(InvalidJobFile(
        path, "pacs", (Problem(path, 9, "repository.password_file", "does not exist"),)),))
    app = StatusPage(config=lambda: config, jobs=lambda: fleet.jobs,
                     reader=fleet.source().reader, clock=fleet.clock,
                     schedules=fixed_schedules())
    for lang, text in (("ja", "pacs: ジョブファイルに誤りがあり、バックアップされていません"),
                       ("en", "pacs: its job file does not validate, so it is not backed up")):
        body = get(app, QUERY_STRING=f"lang={lang}")[2]
        assert re.search(rf'<p class="invalid lv-failing" data-problem="invalid_job_file">'
                         rf'<span aria-hidden="true">✗</span> {text}', body), body
        assert str(path) not in body and "password_file" not in body
        assert len(re.findall(r'data-job="[\w-]+"', body)) == 5  # the valid jobs' cards
    verdict = re.search(r'id="verdict"[^>]*>(.*?)</p>', get(app)[2])
    assert verdict is not None and "6 件のジョブに対応が必要です" in verdict.group(1)


def test_a_card_shows_the_last_recovery_with_its_result_and_measured_time(
        page: StatusPage, fleet: Fleet) -> None:
    body = get(page, QUERY_STRING="lang=en")[2]
    assert "Last recovery" not in body  # none yet: no line
    fleet.clock.at(29)
    run_id = runs.start(fleet.store, job="ok", kind="recovery", operator="yamada")
    runs.finish(fleet.store, run_id, status="success", evidence=False, restore_ms=754_000,
                details=RecoveryDetails(result="pass", operator="yamada", restore_ms=754_000,
                                        target="ssh://root@new-host:22/srv"))
    fleet.clock.at(30)
    ok = get(page, QUERY_STRING="lang=en")[2]
    ok = ok[ok.index('data-job="ok"'):]
    ok = ok[:ok.index("</article>")]
    assert "Last recovery" in ok and "success — took 12m34s" in ok
    assert "new-host" not in ok  # the target is no name of the configuration
    ja = get(page)[2]
    assert "最終復旧" in ja and "所要 12分34秒" in ja
