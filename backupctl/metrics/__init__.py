"""Prometheus metrics from the state database: one truth for commands, textfile and exporter.

Each run builds its own `CollectorRegistry` (never the global default one) holding a
`StateCollector` that reads the state database when it is collected, so the exporter reads
fresh state on every scrape and a textfile written by any command says the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from backupctl import __version__
from backupctl.clock import Clock, system_clock
from backupctl.config.schema import Job
from backupctl.config.validate import Config
from backupctl.metrics.families import families
from backupctl.state.view import StateReader, StateUnavailable, StateView

log = logging.getLogger(__name__)

__all__ = ["Source", "StateCollector", "exposition", "invalid_files", "notify_channels",
           "registry", "render"]

@dataclass
class Source:
    """Where metrics come from: the configured jobs (a callable, so the exporter can reload
    them), the state database, the clock and the versions."""

    jobs: Callable[[], Sequence[Job]]
    reader: StateReader
    restic_version: str
    clock: Clock = system_clock
    version: str = __version__
    # The notification channels to expose (notify_channels); None: all the state knows.
    channels: Callable[[], Sequence[str]] | None = None
    # The job files that do not validate (left out of `jobs`), as paths.
    invalid: Callable[[], Sequence[str]] = lambda: ()


class StateCollector(Collector):
    """Reads the state on every `collect()`; an unreadable state is `backupctl_state_up 0`."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.last_error: str | None = None

    def read(self, jobs: Sequence[Job]) -> StateView | None:
        try:
            view = self.source.reader.read(jobs)
        except StateUnavailable as exc:
            if str(exc) != self.last_error:
                log.warning("%s", exc)
            self.last_error = str(exc)
            return None
        if self.last_error is not None:
            log.info("the state database is readable again")
        self.last_error = None
        return view

    def collect(self) -> Iterable[Metric]:
        jobs = list(self.source.jobs())
        view = self.read(jobs)
        return families(jobs, view,
                        now=self.source.clock().timestamp(), version=self.source.version,
                        restic_version=self.source.restic_version,
                        channels=self.source.channels() if self.source.channels else None,
                        invalid_files=self.source.invalid())


def invalid_files(config: Config) -> list[str]:
    """The job files of `config` that do not validate (partial loading), as paths."""
    return [str(f.path) for f in config.invalid]


def notify_channels(config: Config) -> list[str]:
    """The configured notification channels, and `ping` when a job has pings."""
    names = [c.name for c in config.settings.notify.channels]
    if any(jf.job.notify.ping.configured for jf in config.jobs.values()):
        names.append("ping")
    return names


def registry(source: Source) -> tuple[CollectorRegistry, StateCollector]:
    """A fresh registry for one run (or one exporter) and its collector."""
    reg = CollectorRegistry(auto_describe=False)
    collector = StateCollector(source)
    reg.register(collector)
    return reg, collector


def _label_value(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
    return value


def render(reg: CollectorRegistry) -> bytes:
    """The text exposition format 0.0.4 of gauge and info families.

    Byte-for-byte what `prometheus_client.generate_latest` writes for these families (a test
    compares them), without its per-sample overhead: 100 jobs are ~3 500 samples and the
    exporter must answer a scrape in well under 50 ms.
    """
    out: list[str] = []
    for metric in reg.collect():
        if metric.type not in ("gauge", "info"):
            out.append(generate_latest(_Single(metric)).decode())
            continue
        name = metric.name + "_info" if metric.type == "info" else metric.name
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} gauge\n")
        for sample in metric.samples:
            value = floatToGoString(sample.value)  # type: ignore[no-untyped-call]
            if sample.labels:
                labels = ",".join(f'{k}="{_label_value(v)}"'
                                  for k, v in sorted(sample.labels.items()))
                out.append(f"{sample.name}{{{labels}}} {value}\n")
            else:
                out.append(f"{sample.name} {value}\n")
    return "".join(out).encode()


class _Single(Collector):
    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    def collect(self) -> Iterable[Metric]:
        return [self.metric]


def exposition(source: Source) -> tuple[bytes, bool]:
    """The Prometheus text exposition, and whether the state could be read."""
    reg, collector = registry(source)
    text = render(reg)
    return text, collector.last_error is None
