"""Which repositories can be served to a host over SSH, and the job file rule built on it:
`repository.url` may be omitted only when `local_url` can be served (SPEC §15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupctl.config.served import local_directory, loopback_rest, servable_problem
from backupctl.errors import ConfigError
from tests.unit.config.conftest import ConfigDir

SSH_JOB = """
job: emr-db
host:
  address: 192.0.2.10
  user: backupctl
  identity_file: {id}
source:
  paths: [/srv/data]
repository:
  {repository}
  password_file: {pw}
generations:
  last: 7
schedule:
  backup: "*-*-* 02:00:00"
  verify: "Sun *-*-* 04:00:00"
"""


def _job(cfg: ConfigDir, repository: str) -> None:
    cfg.write_job("emr-db", SSH_JOB.replace("{repository}", repository))


def test_local_directories() -> None:
    assert local_directory("/srv/restic/emr") == Path("/srv/restic/emr")
    assert local_directory("local:/srv/restic/emr") == Path("/srv/restic/emr")
    assert local_directory("srv/restic") is None
    assert local_directory("sftp:backup@host:/srv") is None
    assert local_directory("rest:http://127.0.0.1:8000/") is None


@pytest.mark.parametrize(("url", "port", "userinfo", "path"), [
    ("rest:http://127.0.0.1:8000/emr/", 8000, "", "/emr/"),
    ("rest:http://localhost:8000", 8000, "", "/"),
    ("rest:http://localhost:9000/x/", 9000, "", "/x/"),
    ("rest:http://u:p%40ss@127.0.0.1:8000/emr/", 8000, "u:p%40ss@", "/emr/"),
    ("rest:http://:pw@127.0.0.1/", 80, ":pw@", "/"),
])
def test_loopback_rest_servers(url: str, port: int, userinfo: str, path: str) -> None:
    found = loopback_rest(url)
    assert found is not None
    assert (found.port, found.userinfo, found.path) == (port, userinfo, path)
    assert found.through(40123) == f"rest:http://{userinfo}127.0.0.1:40123{path}"


@pytest.mark.parametrize("url", [
    "rest:http://backup01:8000/emr/", "rest:https://127.0.0.1:8000/", "rest:http://10.0.0.1/",
    "rest:http://127.0.0.1:notaport/", "rest:http://[::1]:8000/",  # the forward dials 127.0.0.1
    "s3:https://s3.example/bucket", "/srv/x"])
def test_not_loopback_rest(url: str) -> None:
    assert loopback_rest(url) is None


def test_what_cannot_be_served_says_why_and_what_to_do() -> None:
    assert servable_problem("/srv/restic/emr") is None
    assert servable_problem("rest:http://127.0.0.1:8000/") is None
    problem = servable_problem("s3:https://s3.example/bucket")
    assert problem is not None
    assert "'s3'" in problem and "repository.url" in problem


def test_an_ssh_job_may_give_only_local_url(cfg: ConfigDir) -> None:
    _job(cfg, "local_url: /srv/restic/emr-db")
    repository = cfg.load().job("emr-db").repository
    assert repository.served and repository.url is None
    assert repository.orchestrator_url == "/srv/restic/emr-db"
    with pytest.raises(RuntimeError, match="serve local_url first"):
        _ = repository.host_url


def test_url_alone_and_both_are_not_served(cfg: ConfigDir) -> None:
    _job(cfg, "url: rest:http://backup01:8000/emr-db/\n  local_url: /srv/restic/emr-db")
    repository = cfg.load().job("emr-db").repository
    assert not repository.served
    assert repository.host_url == "rest:http://backup01:8000/emr-db/"
    assert repository.orchestrator_url == "/srv/restic/emr-db"


def test_neither_url_nor_local_url_names_the_line(cfg: ConfigDir) -> None:
    _job(cfg, "init: true")
    with pytest.raises(ConfigError) as raised:
        cfg.load()
    [message] = raised.value.messages
    assert message.startswith(f"{cfg.jobs_dir / 'emr-db.yaml'}:8: repository: ")
    assert "give url" in message and "local_url" in message


def test_local_url_alone_must_be_servable(cfg: ConfigDir) -> None:
    _job(cfg, "local_url: sftp:backup@nas:/srv/restic/emr-db")
    with pytest.raises(ConfigError) as raised:
        cfg.load()
    [message] = raised.value.messages
    assert ":8: repository: " in message
    assert "'sftp'" in message and "give repository.url" in message
