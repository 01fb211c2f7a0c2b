"""actions.tunnel without processes: which jobs are served, the dry-run plan, the refusals,
and the loopback REST branch through a fake forwarder (the real tunnel: integration tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backupctl.actions import tunnel
from backupctl.config.schema import Job
from backupctl.errors import UsageError
from backupctl.execute.fake import FakeRunner
from backupctl.execute.serve import RestServer


def job(*, host: str = "192.0.2.10", **repository: str) -> Job:
    remote = {"address": host, "user": "backupctl", "identity_file": "/etc/backupctl/id"}
    data: dict[str, Any] = {
        "job": "emr", "host": remote if host != "local" else {"address": "local"},
        "source": {"paths": ["/srv/emr"]},
        "repository": {"password_file": "/etc/backupctl/pw", **repository},
        "generations": {"last": 3}, "schedule": {"backup": "daily", "verify": "weekly"}}
    return Job.model_validate(data)


class FakeForwarder(FakeRunner):
    """A runner whose host "forwards" to whatever port it is asked (nothing is opened)."""

    def __init__(self) -> None:
        super().__init__(host="backupctl@192.0.2.10:22")
        self.forwarded: list[int] = []

    @contextlib.contextmanager
    def forward_remote(self, local_port: int) -> Iterator[int]:
        self.forwarded.append(local_port)
        yield 41000


def test_a_job_with_url_is_not_served() -> None:
    given = job(url="rest:http://backup01:8000/emr/", local_url="/srv/restic/emr")
    assert tunnel.plan(given) == (given, [])
    with tunnel.for_host(given, FakeRunner()) as reached:
        assert reached is given


def test_a_local_job_reaches_local_url_directly() -> None:
    given = job(host="local", local_url="/srv/restic/emr")
    planned, steps = tunnel.plan(given)
    assert steps == [] and planned.repository.host_url == "/srv/restic/emr"
    with tunnel.for_host(given, FakeRunner()) as reached:
        assert reached.repository.host_url == "/srv/restic/emr"
        assert reached.repository.local_url == "/srv/restic/emr"


def test_the_plan_of_a_served_directory_masks_the_credential() -> None:
    planned, steps = tunnel.plan(job(local_url="/srv/restic/emr"))
    assert steps == [
        "on orchestrator: rclone serve restic --append-only --addr 127.0.0.1:<port> "
        "--htpasswd <pipe: one-time credential> /srv/restic/emr (stops with the run)",
        "ssh backupctl@192.0.2.10:22: remote port forward, its 127.0.0.1:<port> → "
        "orchestrator 127.0.0.1:<port> (closed when the run ends)"]
    assert planned.repository.host_url.startswith("rest:http://backupctl:")
    assert planned.repository.orchestrator_url == "/srv/restic/emr"  # forget runs there


def test_the_plan_of_a_loopback_rest_server_forwards_only() -> None:
    planned, steps = tunnel.plan(job(local_url="rest:http://u:pw@127.0.0.1:8000/emr/"))
    assert steps == ["ssh backupctl@192.0.2.10:22: remote port forward, its "
                     "127.0.0.1:<port> → orchestrator 127.0.0.1:8000 (closed when the run ends)"]
    assert planned.repository.host_url == "rest:http://u:pw@127.0.0.1:<port>/emr/"


def test_a_loopback_rest_server_is_forwarded_with_its_own_credential() -> None:
    runner = FakeForwarder()
    with tunnel.for_host(job(local_url="rest:http://u:pw@127.0.0.1:8000/emr/"),
                         runner) as reached:
        assert reached.repository.host_url == "rest:http://u:pw@127.0.0.1:41000/emr/"
    assert runner.forwarded == [8000]
    assert runner.calls == []  # no command ran on the host


def test_a_runner_without_ssh_cannot_serve() -> None:
    with pytest.raises(UsageError, match="not reached over SSH"), \
            tunnel.serve(FakeRunner(host="local"), "/srv/restic/emr", job="emr"):
        pytest.fail("served")


def test_a_repository_elsewhere_is_not_served() -> None:
    with pytest.raises(UsageError, match="neither a directory") as raised, \
            tunnel.serve(FakeForwarder(), "s3:https://u:secret@s3.example/b", job="emr"):
        pytest.fail("served")
    assert "secret" not in str(raised.value)


def test_new_tokens_are_long_random_and_url_safe() -> None:
    tokens = {tunnel.new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) >= 43 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)


def test_a_directorys_rclone_started_early_is_forwarded_with_its_one_credential(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The recovery starts rclone before its plan: `serve` then only forwards to it, and
    every block of the command uses the one credential it was started with."""
    started: list[str] = []

    class Pending:
        def ready(self) -> RestServer:
            return RestServer(port=40123, pid=1)

    @contextlib.contextmanager
    def starting(root: Path, **_kw: object) -> Iterator[Pending]:
        started.append(str(root))
        yield Pending()

    def no_new_server(*_args: object, **_kw: object) -> None:
        raise AssertionError("a second rclone was started")

    monkeypatch.setattr(tunnel, "starting", starting)
    monkeypatch.setattr(tunnel, "rest_server", no_new_server)
    runner = FakeForwarder()
    with tunnel.started("/srv/restic/emr", token=lambda: "t" * 43) as early:
        assert early is not None and started == ["/srv/restic/emr"]
        with tunnel.serve(runner, "/srv/restic/emr", job="emr", early=early) as first, \
                tunnel.serve(runner, "/srv/restic/emr", job="emr", early=early) as second:
            urls = {first.url, second.url}
    assert runner.forwarded == [40123, 40123]
    assert urls == {f"rest:http://backupctl:{'t' * 43}@127.0.0.1:41000/"}
    with tunnel.started("rest:http://u:p@127.0.0.1:8000/") as none:
        assert none is None and started == ["/srv/restic/emr"]


def test_an_s3_copy_is_served_from_an_rclone_remote_its_keys_in_the_environment_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The recovery --from an S3 copy: rclone's on-the-fly S3 remote (no key in it), the
    keys handed to rclone as RCLONE_S3_* variables; unknown keys: nothing to serve."""
    from backupctl.execute import Secret
    from backupctl.restic import s3

    url = "s3:http://127.0.0.1:9000/worm-bucket/emr"
    assert tunnel.backend(url) is None  # keys not registered: not served
    monkeypatch.setattr(s3, "_KNOWN", {})
    s3.register(url, s3.Credentials(Secret("AKIAKEY"), Secret("sk-secret"), "eu-west-1"))
    served = tunnel.backend(url)
    assert served is not None
    assert served.root == (":s3,provider=Other,env_auth=false,endpoint='http://127.0.0.1:9000',"
                           "region='eu-west-1',force_path_style=true:worm-bucket/emr")
    assert {k: v.reveal() for k, v in served.env.items()} == {
        "RCLONE_S3_ACCESS_KEY_ID": "AKIAKEY", "RCLONE_S3_SECRET_ACCESS_KEY": "sk-secret"}
    assert "sk-secret" not in served.shown + str(served.root)
    aws = s3.location("s3:https://s3.ap-northeast-1.amazonaws.com/hospital/emr-db")
    assert tunnel.s3_remote(aws, region="us-east-1") == (
        ":s3,provider=Other,env_auth=false,endpoint='https://s3.ap-northeast-1.amazonaws.com',"
        "region='ap-northeast-1',force_path_style=false:hospital/emr-db")
    assert tunnel.backend("/srv/restic/emr") == tunnel.Backend(Path("/srv/restic/emr"),
                                                               "/srv/restic/emr")
