"""actions.recovery.plan: the target's side of the plan (host key, probe) runs beside the
orchestrator's, and a refused host key still comes first; the snapshot likely chosen is
listed while restic lists the snapshots."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from backupctl.actions import repo as repos
from backupctl.actions.recovery import plan, target
from backupctl.errors import UsageError
from backupctl.execute import Result
from backupctl.execute.fake import Call, FakeRunner
from tests.unit.actions.conftest import make_context

PROBED = json.dumps({"exists": False, "dir": False, "free": 1 << 40, "restic": True,
                     "restic_version": "0.14.0"}).encode()


def _waiting_probe(started: threading.Event) -> FakeRunner:
    """A target whose probe answers only once the orchestrator's side has begun."""
    runner = FakeRunner(host="target")

    def respond(call: Call) -> Result:
        began = started.wait(timeout=30)
        return Result(call.text, 0 if began else 1, PROBED if began else b"", "", 0.0,
                      False, "target")

    runner.on("python3", respond=respond)
    return runner


def test_the_probe_runs_beside_the_orchestrators_side_of_the_plan(tmp_path: Path) -> None:
    ctx, job = make_context(tmp_path)
    started = threading.Event()
    runner = _waiting_probe(started)

    with plan.looking(ctx, job, runner, target.parse("local:/srv/new")) as probed:
        started.set()  # were the probe run first, it would have waited in vain
        found = probed()

    assert found.restic and found.restic_version == "0.14.0"


def _refusing(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    def refused(*_args: object, **_kw: object) -> None:
        raise UsageError("emr: the host key of root@192.0.2.9:22 is not trusted")

    monkeypatch.setattr(target, "require_trusted", refused)
    return FakeRunner(host="target")


def test_a_refused_host_key_comes_first_whatever_the_orchestrator_found(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, job = make_context(tmp_path)
    runner = _refusing(monkeypatch)

    with pytest.raises(UsageError, match="not trusted"), \
            plan.looking(ctx, job, runner, target.parse("ssh://root@192.0.2.9/new")):
        raise UsageError("emr: no snapshot of emr has passed a full verify")
    assert runner.calls == []  # nothing ran on a server whose key is not trusted


def test_the_orchestrators_refusal_stands_when_the_target_is_fine(tmp_path: Path) -> None:
    ctx, job = make_context(tmp_path)
    runner = FakeRunner(host="target")
    runner.on("python3", stdout=PROBED)

    with pytest.raises(UsageError, match="full verify"), \
            plan.looking(ctx, job, runner, target.parse("local:/srv/new")):
        raise UsageError("emr: no snapshot of emr has passed a full verify")


GIVEN, OTHER = "a" * 64, "b" * 64


def _listing(began: threading.Event) -> tuple[FakeRunner, list[str]]:
    """The orchestrator's restic: `find` says it began, then lists the snapshot asked for."""
    local, asked = FakeRunner(host="local"), []

    def respond(call: Call) -> Result:
        snapshot = call.words[call.words.index("--snapshot") + 1]
        asked.append(snapshot)
        began.set()
        listed = [{"snapshot": snapshot, "matches": [
            {"path": "/srv/emr", "type": "dir", "mode": 0o40750}]}]
        return Result(call.text, 0, json.dumps(listed).encode(), "", 0.0, False, "local")

    local.on("find", respond=respond)
    return local, asked


def test_the_snapshot_given_is_listed_while_the_snapshots_are(tmp_path: Path) -> None:
    began = threading.Event()
    local, asked = _listing(began)
    ctx, job = make_context(tmp_path, local=local)
    request = plan.Request(target.parse("local:/srv/new"), snapshot=GIVEN)

    with plan.listing_ahead(ctx, job, repos.primary(job), request) as tree_of:
        beside = began.wait(timeout=30)  # here `choose` runs restic snapshots
        tree = tree_of(GIVEN)

    assert beside and asked == [GIVEN]  # listed once, ahead
    assert tree.snapshot_id == GIVEN and [n.path for n in tree.nodes] == ["/srv/emr"]


def test_a_guess_that_is_not_the_snapshot_chosen_is_listed_again(tmp_path: Path) -> None:
    local, asked = _listing(threading.Event())
    ctx, job = make_context(tmp_path, local=local)
    request = plan.Request(target.parse("local:/srv/new"), snapshot=GIVEN)

    with plan.listing_ahead(ctx, job, repos.primary(job), request) as tree_of:
        tree = tree_of(OTHER)

    assert sorted(asked) == [GIVEN, OTHER] and tree.snapshot_id == OTHER


def test_the_plan_from_an_s3_copy_serves_it_with_the_keys_in_rclones_environment() -> None:
    from backupctl.config.schema import Job

    job = Job.model_validate({
        "job": "emr", "host": {"address": "local"}, "source": {"paths": ["/srv/emr"]},
        "repository": {"url": "/srv/restic/emr", "password_file": "/pw"},
        "generations": {"last": 3}, "schedule": {"backup": "daily", "verify": "weekly"},
        "copies": [{"name": "cloud-worm", "kind": "immutable", "password_file": "/pw2",
                    "url": "s3:https://s3.example.jp/worm/emr", "max_age": "2d",
                    "s3_credentials_file": "/etc/backupctl/secrets/s3",
                    "object_lock": {"mode": "compliance", "min_days": 30}}]})
    request = plan.Request(target.parse("ssh://root@192.0.2.20/srv/restore"),
                           source="cloud-worm")
    lines = plan.describe(job, request)
    assert lines[0] == "repository: cloud-worm (s3:https://s3.example.jp/worm/emr)"
    assert any("rclone serve restic --append-only" in line and "S3 keys in its environment"
               in line for line in lines)
    with pytest.raises(UsageError, match="primary, cloud-worm"):
        plan.describe(job, plan.Request(request.target, source="nope"))
