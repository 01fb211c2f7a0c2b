"""The one wording of why an item needs action (issue 29: "reports say why")."""

from __future__ import annotations

import re
from typing import Any

import pytest

from backupctl.evidence import reasons, summary
from backupctl.evidence.report import labels, mapping


def test_ja_and_en_have_the_same_reasons_and_placeholders() -> None:
    table = reasons.table()
    assert set(table) == {"ja", "en"}
    assert set(table["ja"]) == set(table["en"])
    for key in table["ja"]:
        assert set(re.findall(r"{(\w+)}", table["ja"][key])) == \
            set(re.findall(r"{(\w+)}", table["en"][key])), key


def test_the_generations_reason_names_held_needed_and_the_policy() -> None:
    assert reasons.generations("en", 1, {"last": 7}) == \
        "1 of 2 generations kept (policy: last 7)"
    assert reasons.generations("ja", 1, {"last": 7, "daily": 14}) == \
        "保持している世代は 2 世代必要なところ 1 世代です（方針: last 7, daily 14）"
    assert reasons.generations("en", 2, {"last": 7}) is None
    assert reasons.generations("en", None, {"last": 7}) is None  # not known: no claim


def _job(**overrides: Any) -> dict[str, Any]:
    """A job entry of the report with the summary's facts: all well."""
    return {"job": "emr-db", "description": "", "in_config": True, "policy": {"last": 7},
            "totals": {"backups": 3, "generations": 3, "restore_tests": 1},
            "last_backup_result": "pass", "last_restore_result": "pass",
            "rto_exceeded": False, "rto_seconds": None,
            "copies": [{"name": "usb", "kind": "offline", "runs": 2, "failed": 0,
                        "last_probe": None}], **overrides}


@pytest.mark.parametrize(("overrides", "item", "key"), [
    ({"totals": {"backups": 0, "generations": None, "restore_tests": 1}}, "backups",
     "no_backup"),
    ({"last_backup_result": "fail"}, "backups", "backup_failed"),
    ({"last_restore_result": None}, "restore-tests", "no_restore"),
    ({"last_restore_result": "fail"}, "restore-tests", "restore_failed"),
    ({"rto_exceeded": True}, "restore-tests", "rto"),
    ({"copies": []}, "offline-copies", "no_offline"),
])
def test_each_condition_has_its_reason(overrides: dict[str, Any], item: str,
                                       key: str) -> None:
    assert reasons.of_job(_job(**overrides), lang="en", open_flags=[]) == \
        [(item, reasons.say("en", key))]


def test_copies_flags_and_lost_generations() -> None:
    j = _job(copies=[{"name": "usb", "kind": "offline", "runs": 0, "failed": 0,
                      "last_probe": None},
                     {"name": "worm", "kind": "immutable", "runs": 2, "failed": 2,
                      "last_probe": "fail"}])
    found = reasons.of_job(j, lang="en", lost=["primary"], open_flags=[
        {"job": "emr-db", "raised_at": "2026-11-02T01:00:00+00:00"},
        {"job": "other", "raised_at": "2026-11-01T01:00:00+00:00"}])
    assert found == [
        ("backups", "primary lost snapshots its policy keeps"),
        ("offline-copies", "copy usb was not made in the period"),
        ("offline-copies", "copy worm never succeeded in the period"),
        ("offline-copies", "copy worm can be changed or deleted (it is not immutable)"),
        ("tripwires", "ransomware signs not cleared since 2026-11-02 (pruning is frozen)")]
    assert reasons.of_job(_job(), lang="en", open_flags=[]) == []


def _summary(jobs: list[dict[str, Any]], lang: str, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "records": [], "history": [], "bounds": ("2026-11-01", "2026-11-30"),
        "chain_ok": True, "chain_count": 3, "open_flags": [], "generations": {},
        "limits": {}, "lang": lang, "words": labels()[lang],
        "titles": {i["id"]: i["title"][lang] for i in mapping()["items"]},
        "now": "2026-12-01T00:00:00+00:00", **kw}
    return summary.build(jobs=jobs, **args)


def test_the_first_report_after_one_backup_says_why_backups_need_action() -> None:
    """The issue's first report: one successful backup, one generation kept, and the verdict
    said 要対応 beside "0/1 jobs' newest backup succeeded" without the reason."""
    job = _job(totals={"backups": 1, "generations": 1, "restore_tests": 1,
                       "backups_failed": 0})
    records = [{"job": "emr-db", "kind": "backup", "result": "pass",
                "finished_at": "2026-11-02T02:00:00+00:00", "details": "{}"},
               {"job": "emr-db", "kind": "verify", "result": "pass",
                "finished_at": "2026-11-02T04:00:00+00:00", "details": "{}"}]
    for lang in ("ja", "en"):
        s = _summary([_report_job(job)], lang, records=records)
        backups = next(v for v in s["verdicts"] if v["id"] == "backups")
        why = reasons.generations(lang, 1, {"last": 7})
        assert not backups["achieved"] and backups["reasons"] == [f"emr-db: {why}"]
        assert {"job": "emr-db", "description": None, "text": why} in s["findings"]
    # the evidence states the fact (the newest backup succeeded), the reason the rest
    assert backups["evidence"].startswith("newest backup succeeded for 1 of 1 jobs")


def test_every_action_needed_verdict_has_reasons_and_an_achieved_one_none() -> None:
    s = _summary([_report_job(_job(copies=[], last_restore_result=None))], "en",
                 chain_ok=False, open_flags=[{"job": "emr-db",
                                              "raised_at": "2026-11-02T01:00:00+00:00"}])
    for verdict in s["verdicts"]:
        assert verdict["achieved"] == (not verdict["reasons"]), verdict
    assert not any(v["achieved"] for v in s["verdicts"] if v["id"] != "backups")
    assert _summary([], "en")["verdicts"][0]["reasons"] == ["no job is configured"]


def test_a_long_list_of_reasons_is_cut_and_counted() -> None:
    assert reasons.shown([f"j{i}: x" for i in range(7)], "en")[-1] == "3 more"
    assert reasons.shown(["a", "b"], "ja") == ["a", "b"]


def _report_job(j: dict[str, Any]) -> dict[str, Any]:
    """The report's job entry (facts are the summary's own, from the records)."""
    totals = {"backups": 0, "backups_failed": 0, "copies": 0, "copies_failed": 0, "probes": 0,
              "probes_failed": 0, "restore_tests": 0, "restore_tests_failed": 0,
              "files_checked": 0, "mismatches": 0, "drills": 0, "drills_failed": 0,
              "suspicious": 0, "clears": 0, "generations": None, **j["totals"]}
    return {**{k: v for k, v in j.items() if not k.startswith("last_") and k != "rto_exceeded"},
            "totals": totals}
