"""Notifications end to end through the real CLI: real backups (restic), a real SMTP server
process (aiosmtpd writing a Maildir), a loopback HTTP receiver for the dead-man's pings.

The backup of job emr-db fails on purpose: its `before` hook reads a file whose name is
patient data, and the file is missing (its error names the path). Creating the file makes
the next backup succeed.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select

from backupctl.state.db import Store
from backupctl.state.schema import evidence, notices, runs
from tests import runs as seed
from tests import yaml_helpers
from tests.conftest import PASSWORD, Workspace, free_port
from tests.integration.notify.conftest import secret_file
from tests.notify_servers import HttpReceiver, SmtpServer

TOKEN = "hc-ping-token-7f3a91"
PATIENT = "患者/山田太郎_紹介状.pdf"


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _site(ws: Workspace, *, mail_url: str | None, ping_url: str | None = None,
          channels: list[dict[str, object]] | None = None) -> Path:
    """Config with an e-mail channel (and/or others) and job emr-db; returns the hook file."""
    channels = list(channels or [])
    if mail_url is not None:
        channels.insert(0, {"name": "it-mail", "email": {
            "url": mail_url, "from": "backupctl@hospital.example",
            "to": ["it-team@hospital.example"]}})
    ws.write_config(notify={"language": "ja", "channels": channels})
    source = ws.root / "src" / "emr-db"
    (source / "患者").mkdir(parents=True)
    (source / "data.txt").write_text("EMR data\n")
    needed = source / PATIENT
    data = ws.job("emr-db", source=source)
    data["source"]["before"] = [f"cat '{needed}' >/dev/null"]
    if ping_url is not None:
        data["notify"] = {"ping": {"backup": str(secret_file(
            ws.root / "secrets" / "hc-backup", ping_url))}}
    (ws.jobs_dir / "emr-db.yaml").write_text(yaml_helpers.dump(data))
    return needed


def _no_secret_or_patient_data(*messages: str) -> None:
    for text in messages:
        assert PASSWORD not in text and TOKEN not in text
        assert "山田" not in text and "紹介状" not in text and "患者/" not in text


def test_failure_then_quiet_repeat_then_recovery_in_japanese_with_pings_in_order(
        workspace: Workspace, smtp_server: SmtpServer, http_receiver: HttpReceiver) -> None:
    needed = _site(workspace, mail_url=smtp_server.url(),
                   ping_url=http_receiver.url(f"/ping/{TOKEN}"))

    first = workspace.run("backup", "emr-db")
    assert first.returncode == 1, first.stderr
    mails = smtp_server.messages()
    assert [m["Subject"] for m in mails] == ["[backupctl] 失敗: emr-db のバックアップ"]
    body = _body(mails[0])
    assert "ジョブ: emr-db" in body and "バックアップ運用で失敗がありました" in body
    assert "backupctl status emr-db" in body

    second = workspace.run("backup", "emr-db")  # still failing, within `repeat` (24h)
    assert second.returncode == 1
    assert len(smtp_server.messages()) == 1

    needed.write_text("紹介状\n")
    third = workspace.run("backup", "emr-db")
    assert third.returncode == 0, third.stderr
    mails = smtp_server.messages()
    assert [m["Subject"] for m in mails][1:] == [
        "[backupctl] 復旧: emr-db のバックアップが再び成功しました"]
    assert http_receiver.paths() == [f"/ping/{TOKEN}/start", f"/ping/{TOKEN}/fail",
                                     f"/ping/{TOKEN}/start", f"/ping/{TOKEN}/fail",
                                     f"/ping/{TOKEN}/start", f"/ping/{TOKEN}"]
    assert all(r.method == "POST" for r in http_receiver.requests)
    _no_secret_or_patient_data(*(m["Subject"] + _body(m) for m in mails),
                               *(r.body.decode() for r in http_receiver.requests))
    for run in (first, second, third):  # the run's own output names the hook's error
        assert TOKEN not in run.stdout + run.stderr and PASSWORD not in run.stderr


def test_a_mail_server_that_is_down_changes_nothing_of_the_run_and_is_recorded(
        workspace: Workspace) -> None:
    needed = _site(workspace, mail_url=f"smtp://127.0.0.1:{free_port()}")  # nobody listens

    failed = workspace.run("backup", "emr-db", "--json")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["jobs"][0]["status"] == "failed"
    needed.write_text("紹介状\n")
    recovered = workspace.run("backup", "emr-db")
    assert recovered.returncode == 0, recovered.stderr

    store = Store(f"sqlite:///{workspace.state_dir / 'state.db'}")
    with store.read() as conn:
        statuses = [r.status for r in conn.execute(select(runs.c.status).order_by(runs.c.id))]
        sent = conn.execute(select(notices).order_by(notices.c.id)).all()
        records = [r for r in conn.execute(select(evidence).order_by(evidence.c.seq))
                   if r.kind == "notice"]
    assert statuses == ["failed", "success"]
    assert [(n.channel, n.event, n.result) for n in sent] == [
        ("it-mail", "failure", "failed"), ("it-mail", "recovery", "failed")]
    assert all("cannot connect to 127.0.0.1" in (n.error or "") for n in sent)
    assert [r.result for r in records] == ["fail", "fail"]
    assert json.loads(records[0].details)["channel"] == "it-mail"

    metrics = workspace.run("metrics")
    assert metrics.returncode == 0, metrics.stderr
    assert 'backupctl_notify_last_status{channel="it-mail"} 0.0' in metrics.stdout
    assert "backupctl_notify_last_success_timestamp_seconds{" not in metrics.stdout
    verified = workspace.run("evidence", "verify", "--db")
    assert verified.returncode == 0, verified.stderr


def test_notify_test_names_the_channel_that_failed(
        workspace: Workspace, smtp_server: SmtpServer) -> None:
    _site(workspace, mail_url=smtp_server.url(), channels=[{"name": "down-mail", "email": {
        "url": f"smtp://127.0.0.1:{free_port()}", "from": "backupctl@hospital.example",
        "to": ["it-team@hospital.example"]}}])
    result = workspace.run("notify", "test")
    assert result.returncode == 1
    assert "[OK] it-mail" in result.stderr
    assert "[FAILED] down-mail" in result.stderr and "cannot connect" in result.stderr
    assert [m["Subject"] for m in smtp_server.messages()] == ["[backupctl] テスト通知（it-mail）"]

    one = workspace.run("notify", "test", "it-mail")
    assert one.returncode == 0, one.stderr
    unknown = workspace.run("notify", "test", "nope")
    assert unknown.returncode == 2 and "unknown channel 'nope'" in unknown.stderr
    metrics = workspace.run("metrics").stdout
    assert 'backupctl_notify_last_status{channel="it-mail"} 1.0' in metrics
    assert 'backupctl_notify_last_status{channel="down-mail"} 0.0' in metrics


def test_unit_failed_always_exits_0_and_reports_a_killed_run(
        workspace: Workspace, smtp_server: SmtpServer) -> None:
    _site(workspace, mail_url=smtp_server.url())
    workspace.state_dir.mkdir(mode=0o700)
    store = Store(f"sqlite:///{workspace.state_dir / 'state.db'}")
    seed.start(store, job="emr-db", kind="backup")  # what a run killed by a timeout leaves
    env = {"MONITOR_EXIT_STATUS": "KILL", "MONITOR_SERVICE_RESULT": "timeout"}
    result = workspace.run("notify", "unit-failed", "backupctl-backup@emr-db.service", env=env)
    assert result.returncode == 0, result.stderr
    again = workspace.run("notify", "unit-failed", "backupctl-backup@emr-db.service", env=env)
    assert again.returncode == 0
    # The next command finds the killed run and records it interrupted: told once already.
    assert workspace.run("status").returncode == 0
    with store.read() as conn:
        assert [r.status for r in conn.execute(select(runs.c.status))] == ["interrupted"]
    mails = smtp_server.messages()
    assert [m["Subject"] for m in mails] == ["[backupctl] 失敗: emr-db のバックアップ"]
    assert "実行が途中で止まりました" in _body(mails[0])

    workspace.config.write_text("jobs_dir: [broken\n")
    broken = workspace.run("notify", "unit-failed", "backupctl-backup@emr-db.service", env=env)
    assert broken.returncode == 0 and "nothing sent" in broken.stderr


def test_a_run_found_interrupted_is_told_by_the_command_that_finds_it(
        workspace: Workspace, smtp_server: SmtpServer) -> None:
    _site(workspace, mail_url=smtp_server.url())
    workspace.state_dir.mkdir(mode=0o700)
    seed.start(Store(f"sqlite:///{workspace.state_dir / 'state.db'}"), job="emr-db",
               kind="verify")  # killed (cron: no OnFailure= unit to tell anyone)
    assert workspace.run("status").returncode == 0
    mails = smtp_server.messages()
    assert [m["Subject"] for m in mails] == ["[backupctl] 失敗: emr-db のリストア試験"]
    assert "実行が途中で止まりました" in _body(mails[0])


def test_report_summary_is_the_one_page_alone(workspace: Workspace, tmp_path: Path) -> None:
    _site(workspace, mail_url=None)
    out = tmp_path / "summary.html"
    result = workspace.run("report", "--from", "2026-01-01", "--to", "2026-01-31", "--summary",
                           "-o", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert "経営層向け" in html and "<h1>バックアップ・復旧 監査証跡報告書" not in html
    bad = workspace.run("report", "--from", "2026-01-01", "--to", "2026-01-31", "--summary",
                        "--format", "csv")
    assert bad.returncode == 2 and "--summary" in bad.stderr


def test_a_valid_jobs_unit_failing_for_another_broken_job_file_tells_about_that_file(
        workspace: Workspace, smtp_server: SmtpServer) -> None:
    """Issue 29: emr-db's backup runs and exits 2 because pacs.yaml is invalid (pacs's own
    timers cannot be installed yet): the mail names pacs, once per `repeat`, never
    "emr-db failed"."""
    needed = _site(workspace, mail_url=smtp_server.url())
    needed.parent.mkdir(parents=True, exist_ok=True)
    needed.write_text("x\n")
    workspace.job("pacs", repository={"url": str(workspace.root / "repos" / "pacs"),
                                      "password_file": "/etc/backupctl/secrets/pacs"})
    ran = workspace.run("backup", "emr-db")
    assert ran.returncode == 2 and "[OK] emr-db" in ran.stderr, ran.stderr
    env = {"MONITOR_EXIT_STATUS": "2", "MONITOR_SERVICE_RESULT": "exit-code"}
    for unit in ("backupctl-backup@emr-db.service", "backupctl-verify@emr-db.service"):
        told = workspace.run("notify", "unit-failed", unit, env=env)
        assert told.returncode == 0, told.stderr
    subjects = [m["Subject"] for m in smtp_server.messages()]
    assert subjects == ["[backupctl] 失敗: pacs のバックアップ"], subjects
    assert "設定に誤りがあります" in _body(smtp_server.messages()[0])
