"""The status page's rules: one problem per fact, the worst level leads, the site's line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backupctl.state.view import Run, StateView
from backupctl.web.verdict import (
    Judge,
    Problem,
    Timing,
    level_of,
    ordered,
    problems,
    site,
)
from tests.unit.metrics.conftest import USB, WORM, make_job

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAY = 86400
TIMING = Timing(backup_interval=DAY, verify_interval=7 * DAY, grace=6 * 3600)


def run(status: str, hours_ago: float, *, details: str = "{}", error: str | None = None,
        ) -> Run:
    return Run(status=status, finished_at=(NOW - timedelta(hours=hours_ago)).timestamp(),
               details=details, error=error, exit_code=0 if status == "success" else 1)


def judge(view: StateView, *, copies: list[dict[str, str]] | None = None,
          lang: str = "en") -> Judge:
    return Judge(job=make_job("emr", copies=copies), view=view, now=NOW, lang=lang,
                 timing=TIMING)


def healthy(**extra: Run) -> StateView:
    good = {("backup", "emr", "primary"): run("success", 2),
            ("verify", "emr", "primary"): run("success", 3)}
    newest = {**good}
    for key, value in extra.items():
        kind, repo = key.split("__")
        newest[(kind, "emr", repo)] = value
        if value.status == "success":
            good[(kind, "emr", repo)] = value
    return StateView(newest=newest, success=good)


def keys(found: list[Problem]) -> list[str]:
    return [p.key for p in found]


def test_a_backed_up_and_proven_job_is_ok() -> None:
    found = problems(judge(healthy()))
    assert found == [] and level_of(found) == "ok"


def test_a_job_that_never_ran_is_overdue_and_unproven() -> None:
    found = problems(judge(StateView()))
    assert keys(found) == ["never_backed_up", "never_proven"]
    assert level_of(found) == "overdue"


def test_a_failed_backup_is_failing_with_the_safe_reason_never_the_error() -> None:
    view = healthy(backup__primary=run("failed", 1, error="cannot read /srv/患者/a.txt: timed out"))
    found = problems(judge(view))
    assert keys(found) == ["backup_failed"] and level_of(found) == "failing"
    assert found[0].text == "The last backup failed: a command did not finish in time"
    assert "/srv" not in found[0].text and "患者" not in found[0].text


def test_a_late_backup_is_overdue_by_the_stale_rule() -> None:
    view = healthy(backup__primary=run("success", 24 + 6 + 2))  # interval + grace + 2h
    found = problems(judge(view))
    assert keys(found) == ["backup_overdue"]
    assert "2h00m" in found[0].text
    assert problems(judge(healthy(backup__primary=run("success", 24 + 5)))) == []


def test_bad_data_in_a_restore_test_is_failing_and_counts_mismatches() -> None:
    details = '{"mismatches": [{"path": "/srv/x", "reason": "hash"}]}'
    found = problems(judge(healthy(verify__primary=run("bad_data", 1, details=details)),
                           lang="ja"))
    assert keys(found) == ["proof_failed"]
    assert "1 件のファイル" in found[0].text and "/srv/x" not in found[0].text


def test_a_stale_restore_test_is_overdue() -> None:
    found = problems(judge(healthy(verify__primary=run("success", 7 * 24 + 7))))
    assert keys(found) == ["proof_overdue"]


def test_copies_failed_never_and_too_old() -> None:
    view = healthy(copy__usb=run("success", 8 * 24), copy__worm=run("failed", 1))
    found = problems(judge(view, copies=[USB, WORM]))
    assert keys(found) == ["copy_failed", "copy_old", "probe_never"]
    assert [p.level for p in found] == ["failing", "overdue", "attention"]
    assert "8d" in found[1].text and "7d" in found[1].text
    assert keys(problems(judge(healthy(), copies=[USB]))) == ["copy_never"]


def test_an_immutable_copy_whose_probe_could_delete_is_failing() -> None:
    view = healthy(copy__worm=run("success", 1), probe__worm=run("bad_data", 1))
    assert keys(problems(judge(view, copies=[WORM]))) == ["probe_failed"]


def test_suspicious_leads_and_short_generations_need_attention() -> None:
    view = healthy()
    view = StateView(newest=view.newest, success=view.success, suspicious=frozenset({"emr"}),
                     generations={("emr", "primary"): (2, 7)})
    found = problems(judge(view))
    assert keys(found) == ["suspicious", "generations"]
    assert level_of(found) == "suspicious"
    assert "2 of 7" in found[1].text


def test_jobs_are_ordered_worst_first_then_by_name() -> None:
    assert ordered([("ok", "a"), ("overdue", "b"), ("failing", "z"), ("failing", "c"),
                    ("suspicious", "y")]) == [
        ("suspicious", "y"), ("failing", "c"), ("failing", "z"), ("overdue", "b"), ("ok", "a")]


@pytest.mark.parametrize(("levels", "lang", "level", "text"), [
    (["ok", "ok"], "ja", "ok", "すべてのバックアップは復元できることが証明されています"),
    (["ok", "overdue", "failing", "failing"], "en", "failing",
     "3 job(s) need action (2 Failing, 1 Overdue)"),
    (["attention", "ok"], "ja", "attention", "1 件のジョブに対応が必要です（要注意 1）"),
    ([], "en", "attention", "No jobs are configured"),
])
def test_the_site_verdict_is_one_line(levels: list[str], lang: str, level: str,
                                      text: str) -> None:
    verdict = site(levels, lang=lang)  # type: ignore[arg-type]
    assert (verdict.level, verdict.text) == (level, text)


def test_an_unreadable_state_is_never_all_good() -> None:
    verdict = site(["ok"], lang="en", readable=False)
    assert verdict.level == "failing" and "cannot be read" in verdict.text


def _fresh_judge(*, unproven: int, proof_days: float, waiting_days: float | None,
                 lang: str = "en") -> Judge:
    from backupctl.state.proofs import Freshness

    job = make_job("emr")
    job = job.model_copy(update={"verify": job.verify.model_copy(
        update={"prove_within": 30 * DAY})})
    fresh = Freshness(files=1000, unproven=unproven,
                      oldest_proof=(NOW - timedelta(days=proof_days)).isoformat(),
                      oldest_unproven=(NOW - timedelta(days=waiting_days)).isoformat()
                      if waiting_days is not None else None, snapshot_id="s1")
    view = healthy()
    view = StateView(newest=view.newest, success=view.success, proofs={"emr": fresh})
    return Judge(job=job, view=view, now=NOW, lang=lang, timing=TIMING)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_file_waiting_longer_than_prove_within_needs_attention_and_shows_on_the_card(
        lang: str) -> None:
    from backupctl.web import cards

    fine = _fresh_judge(unproven=5, proof_days=20, waiting_days=2, lang=lang)
    assert keys(problems(fine)) == []
    late = _fresh_judge(unproven=5, proof_days=20, waiting_days=31, lang=lang)
    assert keys(problems(late)) == ["proof_stale"]
    assert level_of(problems(late)) == "attention"
    assert "5" in problems(late)[0].text and "1000" in problems(late)[0].text
    stale = _fresh_judge(unproven=0, proof_days=31, waiting_days=None, lang=lang)
    assert keys(problems(stale)) == ["proof_stale"]
    ctx = cards.Context(now=NOW, tz=UTC, lang=lang, schedules=None,  # type: ignore[arg-type]
                        grace=0)
    shown = cards._freshness(late, ctx)
    assert shown is not None and shown.unproven == 5 and "2026-11-17" in shown.oldest
    assert cards._freshness(judge(healthy()), ctx) is None
