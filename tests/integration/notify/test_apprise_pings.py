"""Apprise (json:// to a loopback receiver) and the healthchecks-style pings."""

from __future__ import annotations

from backupctl.notify import after_run, notify_test, ping_start
from tests.integration.notify.conftest import PATIENT_PATH, TOKEN, Site
from tests.notify_servers import HttpReceiver, SmtpServer


def test_apprise_json_channel_gets_title_body_and_type(site: Site,
                                                       http_receiver: HttpReceiver) -> None:
    site.apprise("teams", http_receiver.url("/hook/" + TOKEN, scheme="json"))
    config = site.config()
    store = site.store()
    site.run(store)
    failed = site.run(store, status="failed",
                      error=f"cannot connect to 192.0.2.10:22 ({PATIENT_PATH})")

    (result,) = after_run(config, store, failed, now=site.clock)

    assert result.ok, result.error
    (request,) = http_receiver.requests
    assert request.method == "POST" and request.path == f"/hook/{TOKEN}"
    payload = request.json()
    assert payload["title"] == "[backupctl] 失敗: emr-db のバックアップ"
    assert "理由: サーバに接続できません" in payload["message"]
    assert payload["type"] == "failure"
    assert PATIENT_PATH not in payload["message"]


def test_pings_start_then_success_and_fail_on_a_failed_run(
        site: Site, http_receiver: HttpReceiver) -> None:
    base = http_receiver.url(f"/ping/{TOKEN}")
    site.ping_url("backup", base)
    config = site.config()
    store = site.store()

    assert ping_start(config, store, job="emr-db", kind="backup") is not None
    after_run(config, store, site.run(store), now=site.clock)
    ping_start(config, store, job="emr-db", kind="backup")
    after_run(config, store, site.run(store, status="failed", error=f"x {PATIENT_PATH}"),
              now=site.clock)
    # no ping file for verify: nothing is sent
    assert ping_start(config, store, job="emr-db", kind="verify") is None

    assert http_receiver.paths() == [f"/ping/{TOKEN}/start", f"/ping/{TOKEN}",
                                     f"/ping/{TOKEN}/start", f"/ping/{TOKEN}/fail"]
    bodies = [r.body.decode() for r in http_receiver.requests]
    assert all("\n" not in b and PATIENT_PATH not in b for b in bodies)
    assert bodies[1].startswith("emr-db backup success") and "failed" in bodies[3]


def test_a_failing_ping_target_never_fails_the_run(site: Site,
                                                   http_receiver: HttpReceiver) -> None:
    http_receiver.status = 404  # a wrong check URL: not retried, recorded
    site.ping_url("backup", http_receiver.url(f"/ping/{TOKEN}"))
    config = site.config()
    store = site.store()
    result = ping_start(config, store, job="emr-db", kind="backup")
    assert result is not None and not result.ok and result.attempts == 1
    assert result.error is not None and "404" in result.error and TOKEN not in result.error


def test_notify_test_reports_each_channel(site: Site, smtp_server: SmtpServer,
                                          http_receiver: HttpReceiver) -> None:
    site.email("it-mail", smtp_server.url())
    site.apprise("chat", http_receiver.url("/chat", scheme="json"))
    config = site.config()
    store = site.store()

    results = notify_test(config, store)

    assert [(r.channel, r.ok, r.event) for r in results] == [("it-mail", True, "test"),
                                                             ("chat", True, "test")]
    (mail,) = smtp_server.messages()
    assert mail["Subject"] == "[backupctl] テスト通知（it-mail）"
    assert "テスト通知" in http_receiver.requests[0].json()["title"]
    only = notify_test(config, store, "chat")
    assert [r.channel for r in only] == ["chat"]
