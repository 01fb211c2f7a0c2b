"""Real Prometheus and a real exporter (the CLI as a subprocess) for metrics tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import yaml_helpers
from tests.conftest import BACKUPCTL, Workspace, free_port, need

RULES = Path(__file__).resolve().parents[3] / "docs" / "prometheus" / "backupctl.rules.yml"


def http_get(url: str, *, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy (its value), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@dataclass
class Exporter:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)


def start_exporter(ws: Workspace) -> Exporter:
    port = free_port()
    log = ws.root / "exporter.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*BACKUPCTL, "-c", str(ws.config), "exporter", "--listen",
                                 f"127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ})
    exporter = Exporter(proc=proc, port=port, log=log)

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"exporter exited {proc.returncode}: {log.read_text()}")
        return http_get(exporter.url + "/healthz")[0] == 200

    wait_for(up, timeout=20, what="the exporter's /healthz")
    return exporter


@pytest.fixture
def exporter_factory() -> Iterator[Callable[[Workspace], Exporter]]:
    started: list[Exporter] = []

    def factory(ws: Workspace) -> Exporter:
        exporter = start_exporter(ws)
        started.append(exporter)
        return exporter

    yield factory
    for exporter in started:
        if exporter.proc.poll() is None:
            exporter.proc.kill()
            exporter.proc.wait(timeout=10)


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = http_get(url)
        payload = json.loads(body)
        if status != 200 or payload.get("status") != "success":
            raise AssertionError(f"{path} {params}: HTTP {status}: {payload}")
        return payload["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" \
            else [{"metric": {}, "value": data["result"]}]
        return result


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[[int], Prometheus]]:
    started: list[Prometheus] = []

    def factory(target_port: int) -> Prometheus:
        root = tmp_path / f"prometheus-{len(started)}"
        root.mkdir()
        config = root / "prometheus.yml"
        config.write_text(yaml_helpers.dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "backupctl", "static_configs": [
                {"targets": [f"127.0.0.1:{target_port}"]}]}],
        }))
        port = free_port()
        log = root / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([need("prometheus"), f"--config.file={config}",
                                     f"--storage.tsdb.path={root / 'data'}",
                                     f"--web.listen-address=127.0.0.1:{port}"],
                                    stdout=out, stderr=subprocess.STDOUT)
        prom = Prometheus(proc=proc, port=port, log=log)
        started.append(prom)
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/-/ready")[0] == 200,
                 timeout=20, what="prometheus to be ready")
        return prom

    yield factory
    for prom in started:
        prom.proc.terminate()
        try:
            prom.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            prom.proc.kill()
            prom.proc.wait()


