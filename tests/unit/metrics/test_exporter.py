"""The exporter's WSGI application and --listen parsing (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backupctl.errors import UsageError
from backupctl.metrics.exporter import CONTENT_TYPE, Exporter, parse_listen
from backupctl.status import ExitStatus
from tests.unit.metrics.conftest import Fleet


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9810", ("127.0.0.1", 9810)), ("[::1]:9100", ("::1", 9100)),
    ("0.0.0.0:80", ("0.0.0.0", 80)), ("localhost:9810", ("localhost", 9810))])
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9810", ":9810", "127.0.0.1", "127.0.0.1:0",
                                  "127.0.0.1:65536", "host.example:9810", "1.2.3.4:x"])
def test_bad_listen_addresses_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_listen(text)
    assert exc.value.status is ExitStatus.USAGE


def _get(app: Exporter, path: str) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response))
    return seen["status"], seen["headers"], body


def test_routes(fleet: Fleet, tmp_path: Path) -> None:
    app = Exporter(fleet.source())
    status, headers, body = _get(app, "/metrics")
    assert status == "200 OK" and headers["Content-Type"] == CONTENT_TYPE
    assert b"backupctl_state_up 1.0" in body
    assert int(headers["Content-Length"]) == len(body)
    assert _get(app, "/healthz")[0] == "200 OK"
    assert _get(app, "/other")[0] == "404 Not Found"
    broken = Exporter(fleet.source(url=f"sqlite:///{tmp_path / 'none.db'}"))
    status, _, body = _get(broken, "/healthz")
    assert status == "503 Service Unavailable" and b"does not exist" in body
    assert b"backupctl_state_up 0.0" in _get(broken, "/metrics")[2]


def _call(app: Exporter, path: str, method: str) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": method}, start_response))
    return seen["status"], seen["headers"], body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_read_only_every_other_method_is_405(fleet: Fleet, method: str) -> None:
    for path in ("/", "/metrics", "/healthz"):
        status, headers, _ = _call(Exporter(fleet.source()), path, method)
        assert status == "405 Method Not Allowed" and headers["Allow"] == "GET, HEAD"


def test_head_has_the_headers_and_no_body(fleet: Fleet) -> None:
    status, headers, body = _call(Exporter(fleet.source()), "/metrics", "HEAD")
    assert status == "200 OK" and int(headers["Content-Length"]) > 0 and body == b""


def test_every_answer_carries_the_security_headers(fleet: Fleet) -> None:
    for path in ("/", "/metrics", "/nope"):
        _, headers, _ = _call(Exporter(fleet.source()), path, "GET")
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp and "unsafe-inline" not in csp
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
