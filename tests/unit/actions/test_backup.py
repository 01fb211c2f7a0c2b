"""The backup action against FakeRunners: order of steps, exit-code mapping, no password in argv."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from sqlalchemy import select

from backupctl.actions import backup as backup_action
from backupctl.actions import tripwire, tunnel, unchanged
from backupctl.actions.context import Context
from backupctl.config.validate import load_config
from backupctl.execute.fake import Call, FakeRunner
from backupctl.execute.serve import RestServer
from backupctl.state import queries
from backupctl.state.db import StateError, Store
from backupctl.state.schema import runs
from backupctl.status import ExitStatus
from backupctl.verify import manifest

PASSWORD = "unit-test-password-5d1c"
SUMMARY = json.dumps({"message_type": "summary", "files_new": 2, "files_changed": 1,
                      "files_unmodified": 0, "data_added": 4096, "total_files_processed": 3,
                      "total_bytes_processed": 9000, "total_duration": 1.5,
                      "snapshot_id": "4a04c7b9"}).encode() + b"\n"
NEW = {"time": "2026-11-25T02:00:01.123456789Z", "paths": ["/srv/data"],
       "hostname": "emr-db", "id": "4a04c7b9" + "0" * 56, "short_id": "4a04c7b9",
       "tags": ["backupctl"]}
OLDER = {**NEW, "time": "2026-11-24T02:00:00Z", "id": "1" * 64, "short_id": "11111111"}
SNAPSHOTS = json.dumps([NEW]).encode()
# forget --prune --json: the groups on one line, then prune's text
FORGET = json.dumps([{"tags": ["backupctl"], "host": "emr-db", "keep": [OLDER, NEW],
                      "remove": None}]).encode() + b"\nloading indexes...\n"


@pytest.fixture(autouse=True)
def _no_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest and tripwires have their own tests; here they do nothing."""
    monkeypatch.setattr(manifest, "build", lambda *a, **k: None)
    monkeypatch.setattr(tripwire, "inspect", lambda *a, **k: [])


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.remote = FakeRunner(host="backupctl@192.0.2.10:22")
        self.remote.on("restic", "version", stdout=b"restic 0.18.0 compiled with go1.24.4\n")
        self.local = FakeRunner(host="local")
        self.local.on("version", stdout=b"restic 0.14.0 compiled with go1.19.8\n")
        self.local.on("snapshots", stdout=SNAPSHOTS)
        self.local.on("forget", stdout=FORGET)
        self.local.on("unlock")
        self.local.on("ls", stdout=json.dumps({"struct_type": "snapshot", "id": "4a04c7b9" * 8,
                                               "time": NEW["time"]}).encode())
        (tmp_path / "jobs").mkdir()
        (tmp_path / "pw").write_text(PASSWORD + "\n")
        (tmp_path / "id").write_text("key\n")
        (tmp_path / "backupctl.yaml").write_text(
            f"jobs_dir: {tmp_path / 'jobs'}\nstate_dir: {tmp_path / 'state'}\n"
            f"scratch_dir: {tmp_path / 'scratch'}\nknown_hosts: {tmp_path / 'kh'}\n")

    def job(self, **overrides: Any) -> Context:
        data: dict[str, Any] = {
            "job": "emr-db",
            "host": {"address": "192.0.2.10", "user": "backupctl",
                     "identity_file": str(self.root / "id")},
            "source": {"paths": ["/srv/data", "/etc/emr"], "exclude": ["*.tmp"]},
            "repository": {"url": "rest:http://backup01:8000/emr-db/",
                           "local_url": "/srv/restic/emr-db",
                           "password_file": str(self.root / "pw")},
            "generations": {"last": 7, "daily": 14},
            "schedule": {"backup": "daily", "verify": "weekly"}}
        data.update(overrides)
        with (self.root / "jobs" / "emr-db.yaml").open("w") as f:
            YAML().dump(data, f)
        config = load_config(self.root / "backupctl.yaml")
        (self.root / "state").mkdir(exist_ok=True)
        store = Store(config.settings.effective_database_url)
        return Context(config=config, store=store, host_runner=lambda c, j: self.remote,
                       local=self.local)

    def run(self, **overrides: Any) -> tuple[backup_action.BackupResult, Context]:
        ctx = self.job(**overrides)
        return backup_action.backup(ctx, ctx.config.job("emr-db")), ctx

    def order(self) -> list[str]:
        """The commands run on the job's host, in order (hook text or restic subcommand)."""
        return [c.words[2] if c.words[:2] == ["sh", "-c"] else _subcommand(c)
                for c in self.remote.calls if c.words != ["restic", "version"]]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def _rows(ctx: Context) -> list[Any]:
    with ctx.store.read() as conn:
        return list(conn.execute(select(runs).order_by(runs.c.id)))


def test_a_successful_backup_runs_before_backup_after_then_forget(env: Env) -> None:
    env.remote.on("sh", "-c")
    env.remote.on("backup", stdout=SUMMARY)

    result, ctx = env.run(source={"paths": ["/srv/data"], "before": ["dump1", "dump2"],
                                  "after": ["cleanup"]})

    assert result.status is ExitStatus.OK, result.error
    assert env.order() == ["dump1", "dump2", "backup", "cleanup"]
    backup = env.remote.commands("backup")[0]
    assert backup.words[backup.words.index("--repo") + 1] == "rest:http://backup01:8000/emr-db/"
    assert backup.words[backup.words.index("--host") + 1] == "emr-db"
    assert backup.words[-2:] == ["--", "/srv/data"]
    forget = env.local.commands("forget")[0]
    assert forget.words[forget.words.index("--repo") + 1] == "/srv/restic/emr-db"
    assert forget.has("--keep-last", "7", "--keep-daily", "14", "--prune")
    assert result.snapshot_id == "4a04c7b9" and result.details.generations == 2
    assert result.snapshot_time == "2026-11-25T02:00:01.123456+00:00"
    assert result.details.bytes_added == 4096 and result.details.files_new == 2
    assert env.remote.closed
    [row] = _rows(ctx)
    assert (row.status, row.exit_code, row.snapshot_id) == ("success", 0, "4a04c7b9")


def test_the_hosts_restic_version_is_asked_first_and_recorded(env: Env) -> None:
    env.remote.on("sh", "-c")
    env.remote.on("backup", stdout=SUMMARY)

    result, _ = env.run(source={"paths": ["/srv/data"], "before": ["dump"]})

    assert result.status is ExitStatus.OK, result.error
    assert env.remote.calls[0].words == ["restic", "version"]
    assert result.details.host_restic_version == "0.18.0"


def test_a_host_restic_older_than_0_14_runs_nothing_on_the_host(env: Env) -> None:
    env.remote.on("restic", "version", stdout=b"restic 0.12.1 compiled with go1.18\n")

    result, ctx = env.run(source={"paths": ["/srv/data"], "before": ["dump"], "after": ["x"]})

    assert result.status is ExitStatus.FAILED and result.error is not None
    assert "restic 0.12.1 on backupctl@192.0.2.10:22" in result.error
    assert "0.14 or newer" in result.error and "host.restic" in result.error
    assert [c.words for c in env.remote.calls] == [["restic", "version"]]
    assert not env.local.commands("forget")
    [row] = _rows(ctx)
    assert row.status == "failed"


def test_no_password_in_any_argv_env_or_stdin_of_any_command(env: Env) -> None:
    env.remote.on("sh", "-c")
    env.remote.on("backup", stdout=SUMMARY)
    result, _ = env.run(source={"paths": ["/srv/data"], "before": ["dump"], "after": ["x"]})
    assert result.status is ExitStatus.OK, result.error

    restic_calls = [c for c in env.remote.calls + env.local.calls if c.words[0] == "restic"]
    assert {_subcommand(c) for c in restic_calls} >= {"backup", "forget", "ls"}
    assert env.remote.leaks(PASSWORD) == [] and env.local.leaks(PASSWORD) == []
    for call in restic_calls:
        if "--password-file" in call.words:
            # The password is handed over as a SecretFile right after --password-file.
            assert call.words[call.words.index("--password-file") + 1] == "<secret>"
            assert [s.reveal() for s in call.secrets] == [PASSWORD]
    assert PASSWORD not in json.dumps(result.to_dict())


def test_an_unchanged_backup_starts_three_restic_processes(env: Env) -> None:
    """backup on the host; ls (manifest, snapshot time) and forget (generations) on the
    orchestrator: each restic start costs ~0.45 CPU-s of key derivation (issue #25)."""
    env.remote.on("backup", stdout=SUMMARY)
    result, _ = env.run()
    assert result.status is ExitStatus.OK, result.error
    restic_calls = [_subcommand(c) for c in env.remote.calls + env.local.calls
                    if c.words[0] == "restic" and c.words[1:2] != ["version"]]
    assert sorted(restic_calls) == ["backup", "forget", "ls"]
    assert result.details.generations == 2


def test_stale_locks_are_removed_after_an_interrupted_run_only(env: Env) -> None:
    """A killed restic's lock is never expired by restic 0.14: after a run found
    interrupted, `restic unlock` (stale locks only) runs once; otherwise never."""
    env.remote.on("backup", stdout=SUMMARY)
    ctx = env.job()
    with ctx.store.transaction() as conn:  # a run a killed process left `running`
        queries.start_run(conn, job="emr-db", kind="backup", repository="primary",
                          operator="scheduler", orchestrator=ctx.store.orchestrator,
                          pid=1, started_at=ctx.store.now())
    result = backup_action.backup(ctx, ctx.config.job("emr-db"))
    assert result.status is ExitStatus.OK, result.error
    assert len(env.local.commands("unlock")) == 1
    assert "unlock: stale locks of the interrupted run removed" in result.details.steps
    backup_action.backup(ctx, ctx.config.job("emr-db"))
    assert len(env.local.commands("unlock")) == 1


def test_while_pruning_is_frozen_the_generations_are_listed(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tripwire, "inspect", lambda *a, **k: ["canary /srv/data/c changed"])
    env.remote.on("backup", stdout=SUMMARY)
    result, _ = env.run()
    assert result.status is ExitStatus.BAD_DATA
    assert env.local.commands("forget") == []  # nothing was made: nothing to remove
    assert len(env.local.commands("snapshots")) == 1 and result.details.generations == 1
    assert any(w.startswith("pruning frozen (ransomware tripwire raised): canary")
               for w in result.details.warnings)


def test_before_failure_skips_restic_but_runs_after(env: Env) -> None:
    env.remote.on("sh", "-c")
    env.remote.on("sh", "-c", "pg_dump emr > /x", returncode=2, stderr="pg_dump: no such db")

    result, ctx = env.run(source={"paths": ["/srv/data"], "before": ["pg_dump emr > /x"],
                                  "after": ["rm -f /x"]})

    assert result.status is ExitStatus.FAILED
    assert env.order() == ["pg_dump emr > /x", "rm -f /x"]
    assert env.remote.commands("backup") == []
    assert env.local.commands("forget") == []  # nothing was made: nothing to remove
    assert "before command 'pg_dump emr > /x' failed" in (result.error or "")
    assert "exited 2" in (result.error or "") and "pg_dump: no such db" in (result.error or "")
    assert _rows(ctx)[0].status == "failed"


def test_a_state_that_cannot_be_read_after_before_still_runs_after(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(*_a: object, **_k: object) -> None:
        raise StateError("state database sqlite:///x: OperationalError: disk I/O error")

    monkeypatch.setattr(unchanged, "parent", unreadable)
    env.remote.on("sh", "-c")
    result, _ = env.run(source={"paths": ["/srv/data"], "before": ["mount /snap"],
                                "after": ["umount /snap"]})
    assert result.status is ExitStatus.FAILED and "disk I/O error" in (result.error or "")
    assert env.order() == ["mount /snap", "umount /snap"]
    assert env.remote.commands("backup") == []


def test_after_failure_fails_a_good_backup(env: Env) -> None:
    env.remote.on("sh", "-c", returncode=1)
    env.remote.on("backup", stdout=SUMMARY)
    result, _ = env.run(source={"paths": ["/srv/data"], "after": ["false"]})
    assert result.status is ExitStatus.FAILED
    assert "after command 'false' failed" in (result.error or "")
    assert _pruned(env) == [] and _removed(env) == [["4a04c7b9"]]


def test_exit_3_fails_with_the_unreadable_files(env: Env) -> None:
    stderr = ('{"message_type":"error","error":{"Op":"read","Path":"/srv/data/x.db","Err":5},'
              '"during":"archival","item":"/srv/data/x.db"}\n'
              "Warning: at least one source file could not be read\n")
    env.remote.on("backup", returncode=3, stdout=SUMMARY, stderr=stderr)

    result, ctx = env.run()

    assert result.status is ExitStatus.FAILED
    assert result.snapshot_id == "4a04c7b9"  # restic made a snapshot, but an incomplete one
    assert "incomplete" in (result.error or "")
    assert "/srv/data/x.db: read failed: Input/output error" in (result.error or "")
    assert _pruned(env) == [] and _removed(env) == [["4a04c7b9"]]
    row = _rows(ctx)[0]
    assert row.status == "failed" and "/srv/data/x.db" in row.error


def test_every_unreadable_file_is_kept_and_the_message_lists_the_first(env: Env) -> None:
    stderr = "".join(
        f'{{"message_type":"error","error":{{"Op":"read","Path":"/srv/data/f{i:03d}","Err":5}},'
        f'"during":"archival","item":"/srv/data/f{i:03d}"}}\n' for i in range(150))
    env.remote.on("backup", returncode=3, stdout=SUMMARY,
                  stderr=stderr + "Warning: at least one source file could not be read\n")

    result, ctx = env.run()

    assert result.status is ExitStatus.FAILED
    assert [u.split(":")[0] for u in result.details.unreadable] == [f"/srv/data/f{i:03d}"
                                                            for i in range(150)]
    error = result.error or ""
    assert "(150 reported)" in error and "/srv/data/f019:" in error
    assert "/srv/data/f020:" not in error and "… and 130 more" in error
    details = json.loads(_rows(ctx)[0].details)
    assert len(details["unreadable"]) == 150  # the run's record keeps all of them


def test_a_skipped_missing_source_path_is_a_failure(env: Env) -> None:
    env.remote.on("backup", stdout=SUMMARY, stderr="/etc/emr does not exist, skipping\n")
    result, _ = env.run()
    assert result.status is ExitStatus.FAILED
    assert "source path(s) missing" in (result.error or "") and "/etc/emr" in (result.error or "")


@pytest.mark.parametrize("code", [2, 4, 42, 137, 255])
def test_unknown_restic_exit_codes_fail(env: Env, code: int) -> None:
    env.remote.on("backup", returncode=code, stdout=SUMMARY)
    result, _ = env.run()
    assert result.status is ExitStatus.FAILED
    assert "unknown exit code" in (result.error or "")
    assert f"exited {code}" in (result.error or "")


def test_a_timed_out_backup_fails(env: Env) -> None:
    env.remote.on("backup", returncode=-1, timed_out=True)
    result, _ = env.run()
    assert result.status is ExitStatus.FAILED and "timed out" in (result.error or "")


def test_no_summary_fails(env: Env) -> None:
    env.remote.on("backup", stdout=b"")
    result, _ = env.run()
    assert result.status is ExitStatus.FAILED
    assert "printed no summary" in (result.error or "")


NO_REPO = ("Fatal: unable to open config file: Stat: stat /srv/restic/emr-db/config: no such "
           "file or directory\nIs there a repository at the following location?\n")


def test_missing_repository_is_never_created_implicitly(env: Env) -> None:
    env.remote.on("backup", returncode=1, stderr=NO_REPO)
    result, _ = env.run()
    assert result.status is ExitStatus.FAILED
    assert "backupctl init emr-db" in (result.error or "")
    assert env.local.commands("init") == [] and env.remote.commands("init") == []


def test_repository_init_true_creates_it_once_then_backs_up(env: Env) -> None:
    env.remote.on("backup", stdout=SUMMARY)
    env.remote.on("backup", returncode=1, stderr=NO_REPO, times=1)
    env.local.on("snapshots", returncode=1, stderr=NO_REPO, times=1)
    env.local.on("init")

    result, _ = env.run(repository={"url": "/srv/restic/emr-db", "init": True,
                                    "password_file": str(env.root / "pw")})

    assert result.status is ExitStatus.OK, result.error
    [init] = env.local.commands("init")
    assert init.words[init.words.index("--repo") + 1] == "/srv/restic/emr-db"
    assert len(env.remote.commands("backup")) == 2
    assert any("created /srv/restic/emr-db" in s for s in result.details.steps)


def test_wrong_password_says_so(env: Env) -> None:
    env.remote.on("backup", returncode=1, stderr="Fatal: wrong password or no key found\n")
    result, ctx = env.run()
    assert "wrong password" in (result.error or "")
    assert "password_file" in (result.error or "")
    assert result.reason == "password" and _rows(ctx)[0].reason == "password"


@pytest.mark.parametrize(("timed_out", "category"), [(False, "hook"), (True, "timeout")])
def test_a_failed_hooks_category_is_stored_with_the_run(env: Env, timed_out: bool,
                                                        category: str) -> None:
    env.remote.on("sh", "-c", returncode=-1 if timed_out else 1, timed_out=timed_out)
    result, ctx = env.run(source={"paths": ["/srv/data"], "before": ["dump"]})
    assert result.status is ExitStatus.FAILED
    assert result.reason == category and _rows(ctx)[0].reason == category


def test_a_successful_run_stores_no_category(env: Env) -> None:
    env.remote.on("backup", stdout=SUMMARY)
    result, ctx = env.run()
    assert result.status is ExitStatus.OK and _rows(ctx)[0].reason is None


def test_an_unexpected_exception_is_recorded_as_failed_then_propagates(env: Env) -> None:
    def boom(call: Any) -> Any:
        raise RuntimeError("kaboom")

    env.remote.on("backup", respond=boom)
    ctx = env.job()
    with pytest.raises(RuntimeError):
        backup_action.backup(ctx, ctx.config.job("emr-db"))
    [row] = _rows(ctx)
    assert row.status == "failed" and "kaboom" in row.error
    assert env.remote.closed


def test_dry_run_plan_masks_the_password_and_runs_nothing(env: Env) -> None:
    ctx = env.job(source={"paths": ["/srv/data"], "before": ["dump"], "after": ["clean"]})
    steps = backup_action.plan(ctx.config.job("emr-db"))
    text = "\n".join(steps)
    assert PASSWORD not in text
    assert "--password-file '<secret>'" in text
    remote = "on backupctl@192.0.2.10:22: "
    assert [s.startswith(remote) for s in steps] == [True, True, True, False]
    assert steps[0] == f"{remote}sh -c 'dump'" and steps[2] == f"{remote}sh -c 'clean'"
    assert steps[3].startswith("on orchestrator: restic --repo /srv/restic/emr-db")
    assert env.remote.calls == []


def test_a_job_with_only_local_url_is_served_to_its_host_for_the_run(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's restic gets the served URL (through --repository-file); forget runs here
    on local_url. The tunnel itself (rclone, the forward): tests/integration/actions."""
    forwarded: list[int] = []

    @contextlib.contextmanager
    def rest_server(root: Path, **_kw: object) -> Iterator[RestServer]:
        assert root == Path("/srv/restic/emr-db")
        yield RestServer(port=1234, pid=0)

    @contextlib.contextmanager
    def forward_remote(local_port: int) -> Iterator[int]:
        forwarded.append(local_port)
        yield 41000

    monkeypatch.setattr(tunnel, "rest_server", rest_server)
    monkeypatch.setattr(tunnel, "new_token", lambda: "one-time-token-for-the-unit-test")
    env.remote.forward_remote = forward_remote  # type: ignore[attr-defined]
    env.remote.on("backup", stdout=SUMMARY)
    served = {"local_url": "/srv/restic/emr-db", "password_file": str(env.root / "pw")}

    dry = backup_action.plan(env.job(repository=served).config.job("emr-db"))
    result, _ = env.run(repository=served)

    assert result.status is ExitStatus.OK, result.error
    assert forwarded == [1234]
    [call] = env.remote.commands("backup")
    assert "<rest:http://backupctl:***@127.0.0.1:41000/>" in call.words
    assert [s.reveal() for s in call.secrets] == [
        "rest:http://backupctl:one-time-token-for-the-unit-test@127.0.0.1:41000/", PASSWORD]
    assert "one-time-token" not in call.text
    assert all("/srv/restic/emr-db" in c.words for c in env.local.commands("forget"))
    assert dry[0].startswith("on orchestrator: rclone serve restic --append-only")
    assert "remote port forward" in dry[1]
    assert "--repository-file '<rest:http://backupctl:***@127.0.0.1:<port>/>'" in dry[2]


def _pruned(env: Env) -> list[Call]:
    """The generation policy's `forget --prune` runs."""
    return [c for c in env.local.commands("forget") if "--prune" in c.words]


def _removed(env: Env) -> list[list[str]]:
    """The snapshots each `forget -- ID…` removed (a failed run's)."""
    return [c.words[c.words.index("--") + 1:] for c in env.local.commands("forget")
            if "--" in c.words]


def test_a_failed_run_removes_its_snapshot_and_records_no_manifest(env: Env) -> None:
    """A missing source path: restic made a snapshot, the run failed; the snapshot is
    removed so that generations, copies and the next verify never see it (SPEC §15)."""
    env.remote.on("backup", stdout=SUMMARY, stderr="/etc/emr does not exist, skipping\n")
    result, _ = env.run()
    assert result.status is ExitStatus.FAILED
    assert _removed(env) == [["4a04c7b9"]] and _pruned(env) == []
    assert result.details.removed_snapshots == ["4a04c7b9"]
    assert result.details.generations is None
    assert "removed snapshot(s) 4a04c7b9 of the failed run" in result.details.steps


def test_a_failed_run_whose_snapshot_cannot_be_removed_says_how(env: Env) -> None:
    env.remote.on("backup", stdout=SUMMARY, stderr="/etc/emr does not exist, skipping\n")
    env.local.on("forget", "--", returncode=1, stderr="Fatal: unable to remove: 403\n")
    result, _ = env.run()
    assert result.status is ExitStatus.FAILED and result.details.removed_snapshots == []
    assert "could not be removed" in (result.error or "")
    assert "restic forget 4a04c7b9" in (result.error or "")


def test_a_suspicious_run_keeps_its_snapshot(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot of a run that raised the tripwire is the evidence: never removed."""
    monkeypatch.setattr(tripwire, "inspect", lambda *a, **k: ["canary /srv/data/c changed"])
    env.remote.on("backup", stdout=SUMMARY)
    result, _ = env.run()
    assert result.status is ExitStatus.BAD_DATA
    assert _removed(env) == [] and result.details.removed_snapshots == []


def _subcommand(call: Call) -> str:
    words = [w for w in call.words if w != "--no-cache"]
    return words[words.index("--password-file") + 2] if "--password-file" in words else words[1]


def test_a_local_jobs_restic_version_is_the_orchestrators_cached_one(env: Env) -> None:
    """A local job's restic is the orchestrator's: its cached version stands in for a
    `restic version` on the host (one process start saved per backup, issue #25)."""
    env.remote.on("backup", stdout=SUMMARY)

    result, ctx = env.run(host={"address": "local"})

    assert result.status is ExitStatus.OK, result.error
    assert not env.remote.commands("version")
    assert result.details.host_restic_version == ctx.restic_version
