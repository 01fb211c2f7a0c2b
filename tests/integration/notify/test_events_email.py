"""Events end to end: a real SMTP server (aiosmtpd process) receives what after_run sends."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from backupctl.notify import after_run, unit_failed
from backupctl.state.schema import evidence, notices
from tests import runs
from tests.integration.notify.conftest import PATIENT_PATH, SMTP_PASSWORD, Site
from tests.notify_servers import SmtpServer, start_smtp


def _body(message: object) -> str:
    part = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    return str(part.get_content())


def test_a_failure_is_mailed_in_japanese_without_patient_paths_or_secrets(
        site: Site, tmp_path: object) -> None:
    server = start_smtp(site.root / "smtp", user="backupctl", password=SMTP_PASSWORD)
    try:
        site.email("it-mail", server.url(user="backupctl"), password=SMTP_PASSWORD)
        config = site.config()
        store = site.store()
        site.run(store)
        failed = site.run(store, status="failed", error=(
            f"emr-db: restic backup failed: cannot read {PATIENT_PATH}: permission denied; "
            f"password {SMTP_PASSWORD}"))

        results = after_run(config, store, failed, now=site.clock)

        assert [(r.channel, r.ok, r.event) for r in results] == [("it-mail", True, "failure")]
        (mail,) = server.messages()
        assert mail["Subject"] == "[backupctl] 失敗: emr-db のバックアップ"
        assert mail["To"] == "it-team@hospital.example"
        body = _body(mail)
        for expected in ("ジョブ: emr-db", "説明: 電子カルテDBサーバ", "種別: バックアップ",
                         "結果: 失敗", "理由:", "backupctl status emr-db",
                         "journalctl -u backupctl-backup@emr-db", "実行サーバ:"):
            assert expected in body, body
        raw = mail.as_bytes().decode("utf-8", errors="replace")
        for forbidden in (PATIENT_PATH, "山田太郎", SMTP_PASSWORD):
            assert forbidden not in body and forbidden not in raw
        with store.read() as conn:
            (row,) = conn.execute(select(notices)).all()
            record = conn.execute(select(evidence).where(evidence.c.kind == "notice")).one()
        assert (row.channel, row.event, row.result, row.run_id) == (
            "it-mail", "failure", "ok", failed.run_id)
        details = json.loads(record.details)
        assert details["channel"] == "it-mail" and details["event"] == "failure"
        assert record.result == "pass" and "本文" not in record.details
        assert "emr-db" not in details.get("error", "")  # no body, only the outcome
    finally:
        server.stop()


def test_one_message_per_transition_reminders_after_repeat_and_a_recovery(
        site: Site, smtp_server: SmtpServer) -> None:
    site.email("it-mail", smtp_server.url())
    site.notify = {"repeat": "24h"}
    config = site.config()
    store = site.store()
    site.run(store)

    def failing(hours: float) -> None:
        after_run(config, store, site.run(store, status="failed", error="x", hours=hours),
                  now=site.clock)

    failing(24)   # success → failed: a message
    failing(6)    # still failing 6 h later: quiet
    failing(6)    # 12 h: quiet
    failing(13)   # 25 h after the first message: a reminder
    after_run(config, store, site.run(store, hours=2), now=site.clock)  # recovery
    after_run(config, store, site.run(store, hours=24), now=site.clock)  # ok → ok: quiet

    subjects = [m["Subject"] for m in smtp_server.messages()]
    assert subjects == ["[backupctl] 失敗: emr-db のバックアップ",
                        "[backupctl] 失敗が続いています: emr-db のバックアップ",
                        "[backupctl] 復旧: emr-db のバックアップが再び成功しました"]


def test_suspicious_backup_probe_and_bad_restore_have_their_own_safe_messages(
        site: Site, smtp_server: SmtpServer) -> None:
    site.email("it-mail", smtp_server.url())
    site.notify = {"language": "en"}
    config = site.config()
    store = site.store()
    site.run(store)
    site.run(store, "verify")
    site.run(store, "probe", repository="worm")
    suspicious = site.run(store, status="bad_data", error=(
        f"emr-db: SUSPICIOUS backup (possible ransomware): canary changed: {PATIENT_PATH}"),
        details={"suspicious": [f"canary changed: {PATIENT_PATH}",
                                "12000 files changed, 40x the median"]})
    probe = site.run(store, "probe", repository="worm", status="bad_data",
                     error="copy worm is NOT immutable: deleting /probe/data/ab succeeded")
    bad = site.run(store, "verify", status="bad_data", error=f"1 mismatch: {PATIENT_PATH}",
                   details={"mismatches": [{"path": PATIENT_PATH, "reason": "hash"}],
                            "restore_ms": 5_400_000, "rto_seconds": 3600,
                            "failures": [f"hash {PATIENT_PATH}"]})
    for run in (suspicious, probe, bad):
        after_run(config, store, run, now=site.clock)

    mails = smtp_server.messages()
    assert [m["Subject"] for m in mails] == [
        "[backupctl] SUSPICIOUS backup (possible ransomware): emr-db",
        "[backupctl] NOT IMMUTABLE: copy worm of emr-db",
        "[backupctl] FAILED: restore test of emr-db"]
    bodies = [_body(m) for m in mails]
    assert "2 ransomware sign(s): 1 canary file(s) changed, 1 burst(s)" in bodies[0]
    assert "deleting or overwriting in copy worm succeeded" in bodies[1]
    assert "journalctl -u backupctl-copy@emr-db" in bodies[1]
    assert "1 file(s) differ from the source" in bodies[2]
    assert "the restore took 1h30m00s, more than the RTO of 1h00m00s" in bodies[2] or \
        "the restore took 1h30m, more than the RTO of 1h00m" in bodies[2]
    for body in bodies:
        assert PATIENT_PATH not in body and "/probe/data" not in body


def test_unwanted_events_are_not_sent(site: Site, smtp_server: SmtpServer) -> None:
    site.email("it-mail", smtp_server.url())
    site.notify = {"events": ["suspicious"]}
    config = site.config()
    store = site.store()
    site.run(store)
    assert after_run(config, store, site.run(store, status="failed", error="x"),
                     now=site.clock) == []
    assert smtp_server.messages() == []


def test_the_failure_unit_reports_a_killed_run_once_and_a_notified_run_never_twice(
        site: Site, smtp_server: SmtpServer) -> None:
    site.email("it-mail", smtp_server.url())
    config = site.config()
    store = site.store()
    site.run(store)
    failed = site.run(store, status="failed", error="x")
    after_run(config, store, failed, now=site.clock)
    # OnFailure= fires for the same failed run: already told, nothing more.
    assert unit_failed(config, store, "backupctl-backup@emr-db.service", exit_status="1",
                       service_result="exit-code", now=site.clock) == []
    # A run killed by the timeout: its row still says running; the unit reports it.
    site.run(store)
    site.clock.now += timedelta(hours=24)
    runs.start(store, job="emr-db", kind="backup")
    sent = unit_failed(config, store, "backupctl-backup@emr-db.service", exit_status="KILL",
                       service_result="timeout", now=site.clock)
    assert [r.event for r in sent] == ["failure"]
    assert unit_failed(config, store, "backupctl-backup@emr-db.service", exit_status="KILL",
                       service_result="timeout", now=site.clock) == []
    # Exit 2 (the configuration broke; no run at all): reported, then bounded by repeat.
    site.clock.now += timedelta(hours=1)
    assert [r.event for r in unit_failed(config, store, "backupctl-verify@emr-db.service",
                                         exit_status="2", now=site.clock)] == ["failure"]
    assert unit_failed(config, store, "backupctl-verify@emr-db.service", exit_status="2",
                       now=site.clock) == []
    subjects = [m["Subject"] for m in smtp_server.messages()]
    assert subjects == ["[backupctl] 失敗: emr-db のバックアップ",
                        "[backupctl] 失敗: emr-db のバックアップ",
                        "[backupctl] 失敗: emr-db のリストア試験"]
    bodies = [_body(m) for m in smtp_server.messages()]
    assert "実行が途中で止まりました" in bodies[1]
    assert "設定に誤りがあります" in bodies[2]
