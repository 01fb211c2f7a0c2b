"""`backupctl metrics`, the textfile refresh after per-job commands, and the exporter CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from backupctl.config.schema import Job
from backupctl.files import write_atomic
from backupctl.metrics import Source
from backupctl.metrics.textfile import write_textfile
from backupctl.state.db import Store
from backupctl.state.records import BackupDetails
from backupctl.state.view import StateReader
from tests import runs
from tests.conftest import BACKUPCTL, Workspace, free_port
from tests.integration.metrics.conftest import Exporter, http_get, wait_for


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _job(name: str) -> Job:
    return Job.model_validate({
        "job": name, "host": {"address": "local"}, "source": {"paths": ["/srv"]},
        "repository": {"url": "/r", "password_file": "/pw"}, "generations": {"last": 2},
        "schedule": {"backup": "daily", "verify": "weekly"}})


def test_metrics_prints_the_exposition_to_stdout(workspace: Workspace) -> None:
    workspace.job("alpha")
    assert workspace.run("backup", "alpha").returncode == 0
    result = workspace.run("metrics")
    assert result.returncode == 0, result.stderr
    samples = _samples(result.stdout)
    key = ("backupctl_backup_last_status", (("backup_job", "alpha"), ("repository", "primary")))
    assert samples[key] == 1
    assert samples[("backupctl_state_up", ())] == 1


def test_an_invalid_job_file_is_a_metric_beside_the_valid_jobs(workspace: Workspace) -> None:
    """Issue 29: the metrics (command and the textfile a run refreshes) name each job file
    that does not validate; the valid jobs keep their series."""
    workspace.write_config(textfile_dir=str(workspace.root / "textfile"))
    (workspace.root / "textfile").mkdir()
    workspace.job("alpha")
    pacs = workspace.jobs_dir / "pacs.yaml"
    pacs.write_text("job: pacs\nhost: {address: local}\n")
    assert workspace.run("backup", "alpha").returncode == 2  # ran; exit 2 for pacs.yaml
    result = workspace.run("metrics")
    assert result.returncode == 0, result.stderr
    for text in (result.stdout, (workspace.root / "textfile" / "backupctl.prom").read_text()):
        samples = _samples(text)
        assert samples[("backupctl_job_file_invalid", (("file", str(pacs)),))] == 1
        assert samples[("backupctl_backup_last_status",
                        (("backup_job", "alpha"), ("repository", "primary")))] == 1


def test_metrics_without_state_says_so_and_exits_1(workspace: Workspace) -> None:
    workspace.job("alpha")
    result = workspace.run("metrics")
    assert result.returncode == 1
    assert "backupctl_state_up 0.0" in result.stdout
    assert "state database" in result.stderr


def test_backup_refreshes_the_textfile_and_metrics_writes_the_same(
        workspace: Workspace) -> None:
    textfile_dir = workspace.root / "textfile"
    textfile_dir.mkdir()
    workspace.write_config(textfile_dir=str(textfile_dir))
    workspace.job("alpha")
    result = workspace.run("backup", "alpha", "--json")
    assert result.returncode == 0, result.stderr
    prom = textfile_dir / "backupctl.prom"
    refreshed = _samples(prom.read_text())
    key = ("backupctl_backup_last_status", (("backup_job", "alpha"), ("repository", "primary")))
    assert refreshed[key] == 1
    assert oct(prom.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in textfile_dir.iterdir()] == ["backupctl.prom"], "temp file left"

    other = workspace.root / "other.prom"
    assert workspace.run("metrics", "--textfile", str(other)).returncode == 0
    written = _samples(other.read_text())
    drop = ("backupctl_copy_age_seconds",)  # the only clock-dependent series
    assert {k: v for k, v in written.items() if k[0] not in drop} == \
        {k: v for k, v in refreshed.items() if k[0] not in drop}


def test_failed_backup_still_refreshes_the_textfile(workspace: Workspace) -> None:
    textfile_dir = workspace.root / "textfile"
    textfile_dir.mkdir()
    workspace.write_config(textfile_dir=str(textfile_dir))
    workspace.job("alpha", repo=workspace.root / "no-such-repository")
    result = workspace.run("backup", "alpha")
    assert result.returncode == 1
    samples = _samples((textfile_dir / "backupctl.prom").read_text())
    key = ("backupctl_backup_last_status", (("backup_job", "alpha"), ("repository", "primary")))
    assert samples[key] == 0
    assert ("backupctl_backup_last_run_timestamp_seconds", key[1]) in samples


def test_a_concurrent_reader_never_sees_a_half_written_textfile(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store(url)
    jobs = [_job(f"job-{i:03d}") for i in range(300)]
    for job in jobs:
        runs.record(store, job=job.name, details=BackupDetails(duration_ms=1000),
                    evidence=False)
    source = Source(jobs=lambda: jobs, reader=StateReader(url), restic_version="0.14.0")
    path = tmp_path / "backupctl.prom"
    write_textfile(source, path)
    complete = path.read_bytes()
    assert len(complete) > 100_000, "the file must be large enough to be written in pieces"

    stop = threading.Event()
    torn: list[int] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            data = path.read_bytes()
            reads += 1
            if data != complete:
                torn.append(len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(40):
            write_atomic(path, complete)
    finally:
        stop.set()
        thread.join()
    assert reads > 40
    assert torn == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backupctl.prom", "state.db"]


def test_exporter_serves_metrics_healthz_and_404_then_stops_on_sigterm(
        workspace: Workspace, exporter_factory: Callable[[Workspace], Exporter]) -> None:
    workspace.job("alpha")
    assert workspace.run("backup", "alpha").returncode == 0
    exporter = exporter_factory(workspace)
    status, body = http_get(exporter.url + "/metrics")
    assert status == 200
    assert 'backupctl_backup_last_status{backup_job="alpha",repository="primary"} 1.0' in \
        body.decode()
    assert http_get(exporter.url + "/healthz") == (200, b"ok\n")
    assert http_get(exporter.url + "/nope")[0] == 404

    # a job added while the exporter runs appears at the next scrape
    workspace.job("beta")
    status, body = http_get(exporter.url + "/metrics")
    assert 'backupctl_backup_last_status{backup_job="beta",repository="primary"} 0.0' in \
        body.decode()
    # a broken job file spoils only itself: the others are served, it is a finding
    broken = workspace.jobs_dir / "broken.yaml"
    broken.write_text("job: [\n")
    status, body = http_get(exporter.url + "/metrics")
    assert status == 200 and 'backup_job="beta"' in body.decode()
    assert f'backupctl_job_file_invalid{{file="{broken}"}} 1.0' in body.decode()
    broken.unlink()  # fixed (removed): the finding goes
    assert "backupctl_job_file_invalid{" not in http_get(exporter.url + "/metrics")[1].decode()

    exporter.proc.send_signal(signal.SIGTERM)
    assert exporter.proc.wait(timeout=15) == 0
    assert "Traceback" not in exporter.log.read_text()


def test_exporter_healthz_is_503_while_the_state_cannot_be_read(
        workspace: Workspace) -> None:
    workspace.job("alpha")
    port = free_port()
    proc = subprocess.Popen([*BACKUPCTL, "-c", str(workspace.config), "exporter", "--listen",
                             f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        status, body = wait_for(lambda: _try(url + "/healthz"), timeout=20, what="exporter")
        assert status == 503 and b"does not exist" in body
        status, body = http_get(url + "/metrics")
        assert status == 200 and b"backupctl_state_up 0.0" in body
        assert workspace.run("status").returncode == 0  # creates the state database
        assert http_get(url + "/healthz")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0


def _try(url: str) -> tuple[int, bytes] | None:
    try:
        return http_get(url)
    except OSError:
        return None


def test_exporter_rejects_a_bad_listen_address(workspace: Workspace) -> None:
    workspace.job("alpha")
    result = workspace.run("exporter", "--listen", "nonsense", timeout=30)
    assert result.returncode == 2
    assert "ADDR:PORT" in result.stderr


def test_exporter_on_a_busy_port_exits_1(workspace: Workspace) -> None:
    workspace.job("alpha")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = workspace.run("exporter", "--listen", f"127.0.0.1:{port}", timeout=30)
    assert result.returncode == 1
    assert "cannot listen" in result.stderr


def test_textfile_write_failure_never_changes_the_backup_result(workspace: Workspace) -> None:
    workspace.write_config(textfile_dir=str(workspace.root / "missing-dir"))
    workspace.job("alpha")
    result = workspace.run("backup", "alpha", "--json")
    assert result.returncode == 0, result.stderr
    assert "cannot write" in result.stderr
    assert os.path.exists(workspace.state_dir / "state.db")


def test_clear_refreshes_the_textfile(workspace: Workspace) -> None:
    """Every command that changes state refreshes the textfile, not only backup/copy/verify."""
    textfile_dir = workspace.root / "textfile"
    textfile_dir.mkdir()
    workspace.write_config(textfile_dir=str(textfile_dir))
    src = workspace.root / "src" / "tw"
    src.mkdir(parents=True)
    canary = src / ".canary"
    workspace.job("tw", source=src, verify={"canaries": [str(canary)]})
    assert workspace.run("canary", "init", "tw").returncode == 0
    canary.write_bytes(os.urandom(64))  # "encrypted"
    assert workspace.run("backup", "tw").returncode == 3
    key = ("backupctl_suspicious", (("backup_job", "tw"),))
    assert _samples((textfile_dir / "backupctl.prom").read_text())[key] == 1

    cleared = workspace.run("clear", "tw", "--operator", "test", "--reason", "drill")
    assert cleared.returncode == 0, cleared.stderr
    assert _samples((textfile_dir / "backupctl.prom").read_text())[key] == 0


def test_every_run_of_an_all_refreshes_the_textfile_and_notify_check_too(
        workspace: Workspace) -> None:
    """The refresh is a run observer: every recorded run rewrites the textfile; `notify
    check`, which records notices and no run, refreshes it too."""
    textfile_dir = workspace.root / "textfile"
    textfile_dir.mkdir()
    workspace.write_config(textfile_dir=str(textfile_dir))
    workspace.job("alpha")
    workspace.job("beta")
    assert workspace.run("backup", "--all").returncode == 0
    prom = textfile_dir / "backupctl.prom"
    status = {labels: v for (name, labels), v in _samples(prom.read_text()).items()
              if name == "backupctl_backup_last_status"}
    assert status == {(("backup_job", job), ("repository", "primary")): 1
                      for job in ("alpha", "beta")}

    prom.unlink()
    assert workspace.run("notify", "check").returncode == 0
    assert prom.exists()
