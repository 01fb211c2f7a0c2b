"""reach.Bounded: a restic older than 0.17.1 is not started against a repository server that
answers nothing (the run is `stopped`: unreachable); 0.17.1+ gets --stuck-request-timeout;
local repositories and `restic version` pass untouched."""

from __future__ import annotations

from backupctl.execute import Secret
from backupctl.execute.fake import FakeRunner
from backupctl.restic import answer, commands, reach
from backupctl.restic.codes import ResticExit
from backupctl.restic.run import outcome_of

REST = "rest:http://nas01:8000/emr/"
PW = Secret("unit-test-password")


def _host(version: str, *, answers: int = answer.SILENT) -> FakeRunner:
    runner = FakeRunner(host="backupctl@10.0.0.5:22")
    runner.on("version", stdout=f"restic {version} compiled with go1.19\n".encode())
    runner.on("python3", returncode=answers)
    runner.on("snapshots", stdout=b"[]")
    return runner


def test_an_http_repositorys_server_is_found_in_every_url_form() -> None:
    assert reach.endpoint(REST) == ("nas01", 8000, False)
    assert reach.endpoint("rest:https://u:pw@[::1]/r/") == ("::1", 443, True)
    assert reach.endpoint("s3:s3.example.com/bucket") == ("s3.example.com", 443, True)
    assert reach.endpoint("s3:http://127.0.0.1:9000/b") == ("127.0.0.1", 9000, False)
    assert reach.endpoint("/srv/restic/emr") is None
    assert reach.endpoint("sftp:backup@nas01:/r") is None
    assert reach.endpoint("rest:http://h:notaport/") is None


def test_a_silent_server_stops_an_old_restic_before_it_starts() -> None:
    runner = _host("0.14.0")
    bounded = reach.Bounded(runner)

    result = bounded.run(commands.snapshots(REST, PW), timeout=3600)

    assert result.stopped and outcome_of(result) is ResticExit.UNREACHABLE
    assert "nas01:8000 accepted no request within 20s" in result.stderr
    assert "restic 0.14.0 would wait for it without end" in result.stderr
    assert not runner.commands("snapshots")  # restic never started
    [asked] = runner.commands("python3")
    assert asked.words[-4:] == ["nas01", "8000", "0", "20.0"]
    assert "emr" not in " ".join(asked.words[-4:])  # host and port only


def test_an_answering_server_lets_restic_run_and_is_asked_once_a_minute() -> None:
    runner = _host("0.16.4", answers=answer.ANSWERED)
    now = [100.0]
    bounded = reach.Bounded(runner, clock=lambda: now[0])

    for _ in range(2):
        assert bounded.run(commands.snapshots(REST, PW), timeout=60).ok
    now[0] += reach.REMEMBER + 1
    bounded.run(commands.snapshots(REST, PW), timeout=60)

    assert len(runner.commands("snapshots")) == 3
    assert len(runner.commands("python3")) == 2


def test_no_python3_on_the_host_leaves_it_to_restic() -> None:
    runner = _host("0.14.0", answers=127)
    assert reach.Bounded(runner).run(commands.snapshots(REST, PW), timeout=60).ok


def test_restic_0171_and_later_get_the_stuck_request_timeout_instead() -> None:
    runner = _host("0.18.0")
    bounded = reach.Bounded(runner)

    bounded.run(commands.snapshots(REST, PW), timeout=60)

    [call] = runner.commands("snapshots")
    assert call.words[:3] == ["restic", "--stuck-request-timeout", reach.STUCK_AFTER]
    assert not runner.commands("python3")
    assert reach.options(bounded) == ["--stuck-request-timeout", reach.STUCK_AFTER]


def test_the_version_restic_answered_here_is_used_without_asking_again() -> None:
    runner = _host("0.18.0")
    bounded = reach.Bounded(runner)

    bounded.run(commands.version(), timeout=30)  # versions.require asks first
    bounded.run(commands.snapshots(REST, PW), timeout=60)
    bounded.run(commands.snapshots(REST, PW), timeout=60)

    assert len(runner.commands("version")) == 1


def test_a_url_with_a_password_is_found_in_its_pipe_and_the_copys_source_too() -> None:
    runner = _host("0.14.0", answers=answer.ANSWERED)
    runner.on("copy")
    argv = commands.copy("rest:http://u:s3cret@nas02:8000/c/", PW, source=REST,
                         source_password=PW)

    assert reach.repositories(argv) == ["rest:http://u:s3cret@nas02:8000/c/", REST]
    reach.Bounded(runner).run(argv, timeout=60)
    assert [c.words[-4:-2] for c in runner.commands("python3")] == [["nas02", "8000"],
                                                                   ["nas01", "8000"]]


def test_local_repositories_and_other_programs_pass_untouched() -> None:
    runner = FakeRunner(host="local")
    runner.on("snapshots", stdout=b"[]")
    runner.on("sh")
    bounded = reach.Bounded(runner, version=lambda: "0.14.0")

    bounded.run(commands.snapshots("/srv/restic/emr", PW), timeout=60)
    bounded.run(["sh", "-c", "true"])

    assert [c.words[0] for c in runner.calls] == ["restic", "sh"]


def test_the_dump_helper_is_not_started_against_a_silent_server() -> None:
    runner = _host("0.14.0")
    bounded = reach.Bounded(runner)
    bounded.run(commands.version(), timeout=30)

    said = reach.silent_before(bounded, REST)

    assert said is not None and said.startswith("repository unreachable: ")
    assert reach.silent_before(bounded, "/srv/restic/emr") is None
    assert reach.options(bounded) == []
    assert reach.silent_before(FakeRunner(), REST) is None  # not bounded: nothing asked


