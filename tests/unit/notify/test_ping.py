"""Pings (notify/ping.py): the hard deadline, the bounded retry, errors recorded by class."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.error
from email.message import Message
from pathlib import Path

import pytest

from backupctl.config.notify import JobNotify, Ping
from backupctl.config.schema import Job
from backupctl.notify import ping as pings
from backupctl.notify.channels import Budget, hard_deadline

TOKEN = "hc-unit-token-6b0e"
URL = f"https://hc.example/ping/{TOKEN}"


def _job(tmp_path: Path, text: str = URL + "\n") -> Job:
    path = tmp_path / "hc"
    path.write_text(text)
    path.chmod(0o600)
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    pw.chmod(0o600)
    return Job.model_validate({
        "job": "emr-db", "host": {"address": "local"}, "source": {"paths": ["/srv"]},
        "repository": {"url": "/r", "password_file": str(pw)}, "generations": {"last": 1},
        "schedule": {"backup": "daily", "verify": "weekly"},
        "notify": JobNotify(ping=Ping(backup=path)).model_dump(by_alias=True)})


def _http_error(code: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError(URL, code, f"reason {URL}", Message(), None)


@pytest.mark.parametrize(("exc", "what"), [
    (_http_error(503), "http 503"),
    (urllib.error.URLError(TimeoutError("timed out")), "timeout"),
    (TimeoutError(), "timeout"),
    (urllib.error.URLError(ConnectionRefusedError(111, "refused")), "connection refused"),
    (urllib.error.URLError(ssl.SSLCertVerificationError(f"bad cert for {URL}")), "tls"),
    (urllib.error.URLError(ssl.SSLError(1, "WRONG_VERSION_NUMBER")), "tls"),
    (urllib.error.URLError(socket.gaierror(-2, "Name or service not known")),
     "name not resolved"),
    (http.client.RemoteDisconnected("closed"), "connection reset"),
    (http.client.InvalidURL(f"URL can't contain control characters. {URL!r}"), "invalid url"),
    (http.client.BadStatusLine(f"garbage {URL}"), "bad answer"),
    (OSError(101, "Network is unreachable"), "network error"),
    (ValueError(f"unknown url type: {URL}"), "invalid url"),
    (RuntimeError(URL), "error"),
])
def test_errors_are_classes_never_text(exc: BaseException, what: str) -> None:
    assert pings.error_class(exc) == what


def test_a_ping_that_never_ends_is_abandoned_at_the_hard_deadline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    monkeypatch.setattr(pings, "_post", lambda *_a: release.wait(120))
    budget = Budget(seconds=0.5, attempt=0.5, attempts=1)
    started = time.monotonic()

    result = pings.ping(_job(tmp_path), "backup", "start", body="x", budget=budget)

    took = time.monotonic() - started
    release.set()
    assert result is not None and (result.ok, result.error, result.attempts) == (
        False, "timeout", 1)
    assert took < hard_deadline(budget) + 5, took


def test_transient_failures_are_retried_within_the_budget_permanent_ones_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def refuse(url: str, _body: str, _timeout: float) -> None:
        calls.append(url)
        raise pings.Again("connection refused")

    monkeypatch.setattr(pings, "_post", refuse)
    result = pings.ping(_job(tmp_path), "backup", "fail", body="a\nb",
                        budget=Budget(seconds=30, attempt=1, attempts=3), sleep=lambda _s: None)
    assert result is not None and (result.error, result.attempts) == ("connection refused", 3)
    assert calls == [URL + "/fail"] * 3

    def not_found(url: str, _body: str, _timeout: float) -> None:
        calls.append(url)
        raise pings.Failed("http 404")

    calls.clear()
    monkeypatch.setattr(pings, "_post", not_found)
    result = pings.ping(_job(tmp_path), "backup", "success", body="ok",
                        budget=Budget(seconds=30, attempt=1, attempts=3), sleep=lambda _s: None)
    assert result is not None and (result.error, result.attempts) == ("http 404", 1)
    assert calls == [URL]


def test_a_ping_file_broken_after_validation_is_recorded_without_its_contents(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    job = _job(tmp_path)
    (tmp_path / "hc").write_text(f"{URL} and more\n")
    result = pings.ping(job, "backup", "start", body="x")
    assert result is not None and result.error == "ping file invalid"
    assert str(tmp_path / "hc") in caplog.text and TOKEN not in caplog.text
    (tmp_path / "hc").chmod(0o644)
    result = pings.ping(job, "backup", "start", body="x")
    assert result is not None and result.error == "ping file unreadable"


def test_no_ping_file_for_the_kind_sends_nothing(tmp_path: Path) -> None:
    assert pings.ping(_job(tmp_path), "verify", "start", body="x") is None
