"""What the run flow and the CLI call: the notification engine's public functions.

- `ping_start(config, store, job=, kind=)`: when a backup/copy/verify run starts.
- `after_run(config, store, finished)`: when any run has been recorded (end ping, then the
  event, the messages, the records).
- `notify_test(config, store, channel)`: `backupctl notify test [CHANNEL]`.
- `unit_failed(config, store, unit, ...)`: `backupctl notify unit-failed UNIT`, started by
  systemd's OnFailure= of every backupctl unit.
- `check_stale` (stale.py) and `digest` (digest.py): `notify check` and `notify digest`.

None of them raises into the caller for a delivery problem; the run's own result and exit
code never depend on them. Every attempt is recorded (record.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime

from backupctl.clock import iso, system_clock
from backupctl.config.notify import Channel
from backupctl.config.validate import Config
from backupctl.errors import UsageError
from backupctl.notify import channels as delivery
from backupctl.notify import events, message, record
from backupctl.notify.model import DeliveryResult, Event, FinishedRun, PingResult
from backupctl.notify.ping import PINGED_KINDS, Signal, ping
from backupctl.notify.reason import reason
from backupctl.notify.texts import t
from backupctl.state import queries
from backupctl.state.db import Store

log = logging.getLogger(__name__)
Now = Callable[[], datetime]


def _description(config: Config, job: str) -> str | None:
    return config.jobs[job].job.description if job in config.jobs else None


def send_event(config: Config, store: Store, event: Event, *, status: str | None = None,
               budget: delivery.Budget = delivery.DEFAULT_BUDGET,
               now: Now = system_clock) -> list[DeliveryResult]:
    """Render `event` in the configured language, deliver it everywhere, record it."""
    settings = config.settings.notify
    if not settings.channels:
        return []
    started = iso(now())
    text = message.render(event, lang=settings.language,
                          description=_description(config, event.job), status=status,
                          tz=config.settings.tz)
    results = delivery.deliver(
        settings.channels, text, event=event.name, sent_at=lambda: iso(now()), budget=budget,
        job=event.job, kind=event.kind, repository=event.repository, run_id=event.run_id)
    record.record(store, results, started_at=started, signer=record.signer_of(config))
    return results


def ping_start(config: Config, store: Store, *, job: str, kind: str,
               run_id: int | None = None) -> PingResult | None:
    """`URL/start` for the job's `kind` runs (call right after the run is started)."""
    if job not in config.jobs or kind not in PINGED_KINDS:
        return None
    return _recorded_ping(config, store, job=job, kind=kind, signal="start", run_id=run_id,
                          body=f"{job} {kind} started on {store.orchestrator}")


def _recorded_ping(config: Config, store: Store, *, job: str, kind: str, signal: Signal,
                   body: str, run_id: int | None = None,
                   now: Now = system_clock) -> PingResult | None:
    started = iso(now())
    result = ping(config.job(job), kind, signal, body=body)
    if result is not None:
        record.record_ping(store, job=job, kind=kind, signal=signal, ok=result.ok,
                           error=result.error, attempts=result.attempts, run_id=run_id,
                           sent_at=started)
    return result


def after_run(config: Config, store: Store, finished: FinishedRun, *,
              budget: delivery.Budget = delivery.DEFAULT_BUDGET,
              now: Now = system_clock) -> list[DeliveryResult]:
    """The end of every run: end ping (success or fail), then any notification it causes."""
    try:
        if finished.job in config.jobs and finished.kind in PINGED_KINDS:
            lang = config.settings.notify.language
            signal: Signal = "success" if finished.ok else "fail"
            line = reason(finished, events.details_of(store, finished.run_id), lang)
            _recorded_ping(config, store, job=finished.job, kind=finished.kind, signal=signal,
                           body=f"{finished.job} {finished.kind} {finished.status}: {line}",
                           run_id=finished.run_id, now=now)
        event = events.decide(config, store, finished, now=now())
        if event is None:
            return []
        return send_event(config, store, event, status=finished.status, budget=budget,
                          now=now)
    except Exception as exc:
        log.warning("%s: notification after the %s run failed: %s: %s", finished.job,
                    finished.kind, exc.__class__.__name__, exc)
        return []


def notify_test(config: Config, store: Store, channel: str | None = None, *,
                budget: delivery.Budget = delivery.DEFAULT_BUDGET,
                now: Now = system_clock) -> list[DeliveryResult]:
    """Send a test message to every channel (or the one named); UsageError for an unknown
    name or when no channel is configured (exit 2)."""
    settings = config.settings.notify
    chosen = select_channels(config, channel)
    results: list[DeliveryResult] = []
    started = iso(now())
    for target in chosen:  # one at a time: each channel gets its own, named message
        text = message.test_message(lang=settings.language, channel=target.name,
                                    orchestrator=store.orchestrator, at=started,
                                    tz=config.settings.tz)
        results += delivery.deliver([target], text, event="test",
                                    sent_at=lambda: iso(now()), budget=budget)
    record.record(store, results, started_at=started, signer=record.signer_of(config))
    return results


def select_channels(config: Config, name: str | None) -> Sequence[Channel]:
    """Every channel, or the one named; UsageError (exit 2) for an unknown name or none."""
    settings = config.settings.notify
    if not settings.channels:
        raise UsageError(f"no notification channel in {config.path}: add notify.channels "
                         "(see docs/operations.md)")
    if name is None:
        return settings.channels
    try:
        return [settings.channel(name)]
    except KeyError:
        known = ", ".join(c.name for c in settings.channels)
        raise UsageError(f"unknown channel {name!r} (channels: {known})") from None


_UNIT = re.compile(r"^backupctl-(backup|copy|verify)@([a-z0-9][a-z0-9-]{0,62})\.service$")


def unit_failed(config: Config, store: Store, unit: str, *, exit_status: str | None = None,
                service_result: str | None = None,
                budget: delivery.Budget = delivery.DEFAULT_BUDGET,
                now: Now = system_clock) -> list[DeliveryResult]:
    """A backupctl unit failed (systemd OnFailure=). The CLI passes `$MONITOR_EXIT_STATUS`
    and `$MONITOR_SERVICE_RESULT` (systemd ≥ 251 sets them for OnFailure= units).

    A run that ended and was already notified (or deliberately not: a reminder not yet due)
    sends nothing again. What the run could not report itself is sent: a process killed or
    timed out (its run is still `running`), an invalid configuration (exit 2, no run at all),
    a unit that never recorded a run."""
    match = _UNIT.match(unit)
    lang = config.settings.notify.language
    moment = now()
    here = store.orchestrator
    if match is None:
        return send_event(config, store, _unit_event(unit, unit, "backup", lang, moment, here,
                                                      exit_status, service_result),
                          budget=budget, now=now)
    kind, job = match.group(1), match.group(2)
    if exit_status == "2" and job in config.jobs and config.invalid:
        # The job ran; the exit 2 was for other, invalid job files (their own timers may not
        # exist yet): each is told once per `repeat`, as a failure of its backup.
        return [r for bad in config.invalid for r in _config_failure(
            config, store, bad.label, unit, "backup", moment, budget=budget, now=now)]
    if exit_status == "2":
        return _config_failure(config, store, job, unit, kind, moment, budget=budget, now=now)
    kinds = ("copy", "probe") if kind == "copy" else (kind,)
    newest = store.query(queries.newest_run, job, kinds)
    if newest is None:
        return send_event(config, store, _unit_event(job, unit, kind, lang, moment, here,
                                                      exit_status, service_result),
                          budget=budget, now=now)
    finished = FinishedRun.of(newest, now=iso(moment))
    decided = events.decide(config, store, finished, now=moment)
    if decided is None:
        return []
    return send_event(config, store, decided, status=finished.status, budget=budget, now=now)


def _config_failure(config: Config, store: Store, job: str, unit: str, kind: str,
                    moment: datetime, *, budget: delivery.Budget,
                    now: Now) -> list[DeliveryResult]:
    """An invalid configuration kept `job`'s `kind` from running: told once per `repeat`."""
    event = _unit_event(job, unit, kind, config.settings.notify.language, moment,
                        store.orchestrator, "2", None, config_error=True)
    last = record.last_delivered(store, job=job, kind=kind, repository="primary",
                                 event="failure")
    if not events.due(last, now=moment, repeat=config.settings.notify.repeat):
        return []
    return send_event(config, store, event, budget=budget, now=now)


def _unit_event(job: str, unit: str, kind: str, lang: str, moment: datetime, here: str,
                exit_status: str | None, service_result: str | None, *,
                config_error: bool = False) -> Event:
    why = t(lang, "reason.config") if config_error else t(
        lang, "reason.unit_failed", unit=unit,
        result=", ".join(x for x in (service_result, exit_status and f"exit {exit_status}")
                         if x) or "?")
    return Event(name="failure", job=job, kind=kind, repository="primary", reason=why,
                 at=iso(moment), orchestrator=here)
