"""actions.recovery.target: TARGET parsed strictly, the job's live source refused."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from backupctl.actions.recovery.target import (
    Probed,
    Target,
    live_source,
    parse,
    probe,
    refuse,
    require_trusted,
)
from backupctl.config.schema import Job
from backupctl.errors import UsageError
from backupctl.execute import Programs, hostkeys
from backupctl.execute.fake import FakeRunner
from backupctl.execute.local import LocalRunner
from backupctl.execute.ssh import ChangedHostKey, SshRunner, UnknownHostKey, fingerprint


@pytest.mark.parametrize(("text", "expected"), [
    ("local:/srv/new", Target("local", "/srv/new")),
    ("local:/srv/new/", Target("local", "/srv/new")),
    ("ssh://10.0.0.9/mnt/data", Target("ssh", "/mnt/data", "10.0.0.9", 22, None)),
    ("ssh://root@emr-new.example:2222/", Target("ssh", "/", "emr-new.example", 2222, "root")),
    ("ssh://admin@[fd00::9]:22/d", Target("ssh", "/d", "fd00::9", 22, "admin")),
])
def test_good_targets(text: str, expected: Target) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(("text", "said"), [
    ("/srv/new", "unknown form"),
    ("local:srv", "absolute path"),
    ("ssh://host", "absolute path"),
    ("ssh://host:0/x", "port '0'"),
    ("ssh://host:ssh/x", "port 'ssh'"),
    ("ssh://host/a/../b", "`..`"),
    ("ssh://-oProxyCommand=x/d", "not a host name"),
    ("ssh://us;er@host/d", "not a user name"),
    ("sftp://host/d", "unknown form"),
])
def test_bad_targets_name_what_is_wrong(text: str, said: str) -> None:
    with pytest.raises(UsageError, match="give local:/ABS/DIR or ssh://") as caught:
        parse(text)
    assert said in str(caught.value)


def test_display_round_trips() -> None:
    assert parse("ssh://root@h:2222/d").display() == "ssh://root@h:2222/d"
    assert parse("ssh://[fd00::9]/d").display() == "ssh://[fd00::9]:22/d"
    assert parse("local:/x").root("/srv/data/a") == "/x/srv/data/a"


def _job(address: str = "10.0.0.5", port: int = 22) -> Job:
    return Job.model_validate({
        "job": "emr", "host": {"address": address, "port": port, "user": "root",
                               "identity_file": "/k"},
        "source": {"paths": ["/srv/emr", "/etc/emr"]},
        "repository": {"url": "/r", "password_file": "/p"}, "generations": {"last": 2},
        "schedule": {"backup": "daily", "verify": "weekly"}})


@pytest.mark.parametrize(("to", "live"), [
    ("ssh://10.0.0.5/srv/emr", ["/srv/emr"]),
    ("ssh://10.0.0.5/", ["/srv/emr", "/etc/emr"]),  # restic writes /SRC under TARGET/SRC
    ("ssh://10.0.0.5/srv", ["/srv/emr"]),
    ("ssh://10.0.0.5/srv/emr/sub", ["/srv/emr"]),
    ("ssh://10.0.0.5/mnt/restore", []),
    ("ssh://10.0.0.6/srv/emr", []),
    ("ssh://10.0.0.5:2222/srv/emr", []),
    ("local:/srv/emr", []),
])
def test_the_jobs_own_source_is_recognised(to: str, live: list[str]) -> None:
    assert live_source(parse(to), _job()) == live


@pytest.mark.parametrize(("probed", "overwrite", "said"), [
    (Probed(True, False, True, 10**9, True), True, "not a directory"),
    (Probed(True, True, False, 10**9, True), False, "not empty"),
    (Probed(False, False, True, 10**9, False), False, "restic is not installed"),
    (Probed(False, False, True, 10, True), False, "bytes free"),
    (Probed(False, False, True, 10**9, True, "0.12.1"), False,
     "restic 0.12.1 on local:/x is too old: the recovery needs restic 0.14 or newer there"),
])
def test_refusals(probed: Probed, overwrite: bool, said: str) -> None:
    with pytest.raises(UsageError, match=said):
        refuse(probed, parse("local:/x"), _job(), overwrite=overwrite, needed=1000)


def test_a_non_empty_directory_is_accepted_with_overwrite() -> None:
    refuse(Probed(True, True, False, 10**9, True), parse("local:/x"), _job(), overwrite=True,
           needed=1000)


def test_the_targets_restic_version_is_asked_and_a_supported_one_accepted() -> None:
    runner = FakeRunner(host="backupctl@10.0.0.9:22")
    runner.on("python3", stdout=b'{"exists": false, "dir": false, "free": 1000000000, '
              b'"restic": true, "restic_version": "0.18.0"}')

    probed = probe(runner, parse("ssh://10.0.0.9/srv/new"), job="emr", timeout=60)

    assert probed.restic_version == "0.18.0"
    assert runner.calls[0].words[-1] == "restic"  # the program the restore will start
    refuse(probed, parse("ssh://10.0.0.9/srv/new"), _job(), overwrite=False, needed=1000)


def test_the_probe_program_reports_the_version_of_the_restic_it_is_given(
        tmp_path: Path) -> None:
    fake = tmp_path / "restic"
    fake.write_text("#!/bin/sh\necho 'restic 0.12.1 compiled with go1.16 on linux/amd64'\n")
    fake.chmod(0o755)
    probed = probe(Programs(LocalRunner(), {"restic": str(fake)}), parse(f"local:{tmp_path}/t"),
                   job="emr", timeout=60)
    assert probed.restic and probed.restic_version == "0.12.1"



class _Connecting(SshRunner):
    """An SshRunner whose handshake ends as scripted (no network)."""

    def __init__(self, failure: Exception | None) -> None:
        super().__init__(job="emr", address="192.0.2.9", port=2222, user="root",
                         identity_file=Path("/id"), known_hosts=Path("/kh"), keepalive=15,
                         dead_after=60)
        self.failure, self.handshakes = failure, 0

    def connect(self) -> None:
        self.handshakes += 1
        if self.failure is not None:
            raise self.failure


def _trusting(runner: _Connecting, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_second_handshake(*_args: object, **_kw: object) -> None:
        raise AssertionError("the host key was fetched by a handshake of its own")

    monkeypatch.setattr(hostkeys, "fetch", no_second_handshake)
    require_trusted(runner, parse("ssh://root@192.0.2.9:2222/new"), known_hosts=Path("/kh"),
                    job="emr")


def test_the_host_key_is_checked_on_the_runners_own_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _Connecting(None)
    _trusting(runner, monkeypatch)
    assert runner.handshakes == 1


def test_an_unknown_or_changed_host_key_is_refused_saying_how_to_trust_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    offered, expected = paramiko.RSAKey.generate(1024), paramiko.RSAKey.generate(1024)
    trust = "backupctl trust ssh://root@192.0.2.9:2222/new"
    unknown = _Connecting(UnknownHostKey("unknown", offered=offered))
    changed = _Connecting(ChangedHostKey("changed", offered=offered, expected=expected))

    with pytest.raises(UsageError) as untrusted:
        _trusting(unknown, monkeypatch)
    with pytest.raises(UsageError) as other:
        _trusting(changed, monkeypatch)

    said = str(untrusted.value)
    assert "not trusted" in said and fingerprint(offered) in said and trust in said
    assert "/kh has no key for [192.0.2.9]:2222" in said and "nothing was run" in said
    said = str(other.value)
    assert "CHANGED" in said and "attack" in said and trust in said
    assert fingerprint(offered) in said and fingerprint(expected) in said
