"""The immutability probe's verdicts (fake HTTP) and URL credential masking."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from backupctl.actions import probe
from backupctl.actions.repo import display_url as repos_display
from backupctl.execute import Secret
from backupctl.status import ExitStatus

Server = Callable[..., probe.HttpResponse]


class FakeServer:
    """A restic REST server in memory; `append_only` refuses DELETE and overwrite."""

    def __init__(self, *, append_only: bool, create_status: int = 200) -> None:
        self.append_only, self.create_status = append_only, create_status
        self.objects: dict[str, bytes] = {}
        self.calls: list[tuple[str, str, tuple[str, str] | None]] = []

    def __call__(self, method: str, url: str, *, body: bytes | None,
                 auth: tuple[str, Secret] | None) -> probe.HttpResponse:
        self.calls.append((method, url, (auth[0], auth[1].reveal()) if auth else None))
        if url.endswith("?create=true"):
            return probe.HttpResponse(self.create_status)
        if method == "GET":
            return probe.HttpResponse(200, self.objects[url]) if url in self.objects \
                else probe.HttpResponse(404)
        exists = url in self.objects
        if self.append_only and exists:
            return probe.HttpResponse(403)
        if method == "DELETE":
            self.objects.pop(url, None)
        else:
            self.objects[url] = body or b""
        return probe.HttpResponse(200)


def test_append_only_server_passes() -> None:
    server = FakeServer(append_only=True)
    result = probe.probe_rest("worm", "rest:http://127.0.0.1:8000/emr/", http=server)
    assert result.status is ExitStatus.OK and result.ok
    assert [a.outcome for a in result.attempts] == ["succeeded", "succeeded", "refused",
                                                    "refused", "succeeded"]
    assert all("/emr-backupctl-probe" in url for _, url, _ in server.calls)
    assert not any("/locks/" in url for _, url, _ in server.calls)


def test_writable_server_fails_with_exit_3_naming_the_deleted_object() -> None:
    result = probe.probe_rest("worm", "rest:http://h:8000/", http=FakeServer(append_only=False))
    assert result.status is ExitStatus.BAD_DATA and not result.ok
    assert result.error is not None
    assert result.error.startswith("copy worm is NOT immutable: deleting http://h:8000/"
                                   "backupctl-probe/data/")


def test_probe_object_name_is_the_sha256_of_its_content() -> None:
    server = FakeServer(append_only=True)
    probe.probe_rest("w", "rest:http://h/", http=server, random=lambda n: b"\x01" * n)
    name = hashlib.sha256(b"\x01" * 64).hexdigest()
    assert server.calls[1][:2] == ("POST", f"http://h/backupctl-probe/data/{name}")


def test_a_server_that_refuses_even_the_probe_write_proves_nothing() -> None:
    result = probe.probe_rest("w", "rest:http://h/",
                              http=FakeServer(append_only=True, create_status=403))
    assert result.status is ExitStatus.FAILED and not result.ok
    assert "could not be proven" in (result.error or "")


def test_unreachable_server_is_a_failure_not_a_pass() -> None:
    def down(method: str, url: str, *, body: bytes | None,
             auth: tuple[str, Secret] | None) -> probe.HttpResponse:
        return probe.HttpResponse(0, error="ConnectionRefusedError: refused")
    result = probe.probe_rest("w", "rest:http://h/", http=down)
    assert result.status is ExitStatus.FAILED and not result.ok


def test_credentials_go_to_basic_auth_and_never_into_targets() -> None:
    server = FakeServer(append_only=True)
    result = probe.probe_rest("w", "rest:https://backup:s3cr%40t@vault:8443/emr/", http=server)
    assert {c[2] for c in server.calls} == {("backup", "s3cr@t")}
    assert all("s3cr" not in a.target and "backup@" not in a.target for a in result.attempts)
    assert server.calls[0][1] == "https://vault:8443/emr-backupctl-probe/?create=true"


def test_unprobeable_scheme_is_never_trusted() -> None:
    result = probe.probe("s3", "s3:s3.example.com/bucket", runner=None,  # type: ignore[arg-type]
                         sealed=False)
    assert result.status is ExitStatus.FAILED and not result.ok


def test_repository_urls_are_shown_without_passwords() -> None:
    assert repos_display("rest:http://u:pw@h:8000/r/") == "rest:http://u:***@h:8000/r/"
    assert repos_display("/srv/restic/emr") == "/srv/restic/emr"
