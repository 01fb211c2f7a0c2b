"""The one-line reason: backupctl's error wording → a category; never the error text."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from backupctl.errors import Reason
from backupctl.notify.model import FinishedRun
from backupctl.notify.reason import classify, reason

PATH = "/srv/emr/患者/山田太郎.pdf"


def _run(kind: str = "backup", status: str = "failed", error: str | None = None,
         repository: str = "primary") -> FinishedRun:
    return FinishedRun(job="emr-db", kind=kind, repository=repository, status=status,  # type: ignore[arg-type]
                       exit_code=3 if status == "bad_data" else 1, error=error,
                       started_at="2026-02-01T17:00:00+00:00",
                       finished_at="2026-02-01T17:10:00+00:00", orchestrator="backup01")


@pytest.mark.parametrize(("error", "category"), [
    ("emr-db: cannot connect to 192.0.2.10:22 as backupctl: timed out", "timeout"),
    ("emr-db: cannot connect to 192.0.2.10:22 as backupctl: [Errno 111] refused",
     "unreachable"),
    ("emr-db: host key for [192.0.2.10]:22 changed (known_hosts line 4)", "host_key"),
    ("emr-db: restic backup failed (wrong password or no key found)", "password"),
    ("emr-db: already running (backup01 holds /var/lib/backupctl/locks/emr-db.lock)", "locked"),
    ("emr-db: before command '/usr/local/sbin/dump.sh' failed (exit 2)", "hook"),
    ("emr-db: not enough free space in /var/tmp/backupctl: the snapshot needs 3 GiB", "space"),
    (f"emr-db: restic failed reading {PATH}", None),
])
def test_errors_are_classified_by_backupctls_own_wording(error: str,
                                                         category: str | None) -> None:
    assert classify(error) == category


@pytest.mark.parametrize(("run", "details", "expected"), [
    (_run(error=f"restic failed reading {PATH}"), {}, "実行を完了できませんでした（終了コード 1）"),
    (_run(status="interrupted"), {}, "実行が途中で止まりました"),
    (_run(status="bad_data", error=f"SUSPICIOUS: canary changed: {PATH}"),
     {"suspicious": [f"canary changed: {PATH}"]}, "カナリアファイルの変化 1 件"),
    (_run("probe", "bad_data", "deleting /probe/data/x succeeded", "worm"), {},
     "複製先 worm で削除または上書きができてしまいました"),
    (_run("verify", "bad_data", f"mismatch {PATH}"),
     {"mismatches": [{"path": PATH, "reason": "hash"}] * 3},
     "3 件のファイルが元データと一致しませんでした"),
    (_run("verify", "bad_data", "slow"), {"restore_ms": 7_260_000, "rto_seconds": 3600},
     "復旧に 2時間1分 かかり、目標復旧時間 1時間 を超えました"),
    (_run(status="success"), {}, "バックアップが成功しました"),
])
def test_reason_holds_counts_and_names_never_the_error(run: FinishedRun,
                                                       details: dict[str, Any],
                                                       expected: str) -> None:
    line = reason(run, details, "ja")
    assert expected in line
    assert PATH not in line and "\n" not in line


def test_the_stored_category_wins_over_the_errors_wording() -> None:
    """The category decided where the run failed (runs.reason) is what the message says,
    whatever the error's text happens to contain."""
    run = dataclasses.replace(_run(error=f"before command failed reading {PATH}"),
                              reason="space")
    assert classify(run.error) == "hook"  # what the wording alone would have said
    assert reason(run, {}, "ja") == "作業領域の空き容量が足りません"
    assert reason(run, {}, "en") == "not enough free space in the scratch area"


@pytest.mark.parametrize("category", list(Reason))
def test_every_failure_category_has_a_message_in_both_languages(category: Reason) -> None:
    run = dataclasses.replace(_run(error=None), reason=str(category))
    generic = {reason(_run(error=None), {}, lang) for lang in ("ja", "en")}
    for lang in ("ja", "en"):
        assert reason(run, {}, lang) not in generic
