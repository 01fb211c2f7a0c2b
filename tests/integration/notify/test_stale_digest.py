"""`notify check` (stale jobs, with the real systemd-analyze) and `notify digest` (with the
management summary PDF attached), delivered to the real test servers."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

from backupctl.notify import after_run, check_stale, digest
from tests.conftest import need
from tests.integration.notify.conftest import Site
from tests.notify_servers import HttpReceiver, SmtpServer


def test_a_stale_backup_is_alerted_once_reminded_after_repeat_and_recovers(
        site: Site, smtp_server: SmtpServer) -> None:
    need("systemd-analyze")
    site.email("it-mail", smtp_server.url())
    config = site.config()
    store = site.store()
    site.run(store, "verify")
    site.run(store, hours=1)
    last = site.clock.now

    site.clock.now = last + timedelta(hours=29)  # daily schedule + 6 h grace not yet over
    assert check_stale(config, store, site.clock.now).stale == []
    site.clock.now = last + timedelta(hours=31)
    first = check_stale(config, store, site.clock.now)
    assert [(s.job, s.kind, s.interval_seconds) for s in first.stale] == [
        ("emr-db", "backup", 86400)]
    assert [d.ok for d in first.deliveries] == [True]
    site.clock.now += timedelta(hours=1)  # the hourly timer again: already told
    assert check_stale(config, store, site.clock.now).deliveries == []
    site.clock.now += timedelta(hours=24)
    assert len(check_stale(config, store, site.clock.now).deliveries) == 1  # reminder
    after_run(config, store, site.run(store, hours=1), now=site.clock)

    subjects = [m["Subject"] for m in smtp_server.messages()]
    assert subjects == ["[backupctl] 期限切れ: emr-db のバックアップが成功していません",
                        "[backupctl] 期限切れ（継続）: emr-db のバックアップが成功していません",
                        "[backupctl] 復旧: emr-db のバックアップが再び成功しました"]


def test_digest_mails_the_summary_pdf_and_posts_the_text(
        site: Site, smtp_server: SmtpServer, http_receiver: HttpReceiver,
        tmp_path: Path) -> None:
    site.email("it-mail", smtp_server.url())
    site.apprise("chat", http_receiver.url("/chat", scheme="json"))
    config = site.config()
    store = site.store()
    for _ in range(6):
        site.run(store)
    site.run(store, "verify", details={"mode": "full", "files_checked": 500,
                                       "restore_seconds": 1800, "rto_seconds": 3600})
    site.run(store, status="failed", error="x")

    result = digest(config, store, 7, clock=site.clock)

    assert [(d.channel, d.ok) for d in result.deliveries] == [("it-mail", True),
                                                              ("chat", True)]
    (mail,) = smtp_server.messages()
    assert mail["Subject"].startswith("[backupctl] バックアップ状況のまとめ ")
    body = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "emr-db: バックアップ 6 回（失敗 1）、復元を証明 1 回" in body
    assert "[要対応]" in body and "最新のバックアップが失敗しています" in body
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    pdf = tmp_path / "summary.pdf"
    pdf.write_bytes(attachment.get_content())
    text = subprocess.run([need("pdftotext"), str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "経営層向け" in text and "要対応" in text
    chat = http_receiver.requests[0].json()
    assert chat["title"] == mail["Subject"] and "emr-db" in chat["message"]
