"""Events → messages a person reads (ja or en): subject, and a short labelled body.

A body holds the job, its description, the kind of run, the result, one safe reason line
(reason.py), the orchestrator, the time and the commands to investigate. Every text passes
through `backupctl.log.mask` as the last step, so a secret that slipped into a value is
still never sent.
"""

from __future__ import annotations

from datetime import tzinfo

from backupctl import fmt
from backupctl.log import mask
from backupctl.notify.model import Event, Message
from backupctl.notify.texts import kind_label, t

_UNIT_OF_KIND = {"backup": "backup", "copy": "copy", "probe": "copy", "verify": "verify"}


def local_time(stamp: str, tz: tzinfo | None = None) -> str:
    """A stored ISO time on the wall clock of `timezone`, to the minute, with the zone:
    `2026-12-08 01:04 (Asia/Tokyo, UTC+09:00)`."""
    zone = tz or fmt.system_zone()
    when = fmt.moment(stamp)
    if when is None:
        return stamp
    return f"{fmt.local(when, zone)} ({fmt.zone_label(zone, when)})"


def investigate(job: str, kind: str) -> list[str]:
    """The commands that show what happened."""
    commands = [f"backupctl status {job}"]
    unit = _UNIT_OF_KIND.get(kind)
    if unit is not None:
        commands.append(f"journalctl -u backupctl-{unit}@{job} --since -1d")
    return commands


def _status_of(event: Event) -> str:
    return {"recovery": "success", "probe": "bad_data", "suspicious": "bad_data"}.get(
        event.name, "failed")


def render(event: Event, *, lang: str, description: str | None,
           status: str | None = None, tz: tzinfo | None = None) -> Message:
    """The message for one event. `status` is the run's status (runs.status) when known."""
    key = f"{event.name}_reminder" if event.reminder else event.name
    kind = kind_label(lang, event.kind)
    subject = t(lang, f"subject.{key}", job=event.job, kind=kind, repository=event.repository)
    label = {k: t(lang, f"label.{k}") for k in (
        "job", "description", "kind", "repository", "result", "reason", "orchestrator", "at",
        "investigate", "event")}
    result = t(lang, f"status.{status or _status_of(event)}") if event.name != "stale" \
        else t(lang, "event.stale")
    lines = [t(lang, f"intro.{key}"), ""]
    rows = [(label["job"], event.job)]
    if description:
        rows.append((label["description"], description))
    rows += [(label["event"], t(lang, f"event.{event.name}")),
             (label["kind"], kind)]
    if event.repository and event.repository != "primary":
        rows.append((label["repository"], event.repository))
    rows += [(label["result"], result), (label["reason"], event.reason),
             (label["orchestrator"], event.orchestrator), (label["at"], local_time(event.at, tz))]
    lines += [f"{name}: {value}" for name, value in rows]
    lines += ["", f"{label['investigate']}:"]
    lines += [f"  {command}" for command in investigate(event.job, event.kind)]
    lines += ["", t(lang, "footer")]
    return Message(subject=mask(subject), body=mask("\n".join(lines)),
                   level="ok" if event.name == "recovery" else "alert")


def test_message(*, lang: str, channel: str, orchestrator: str, at: str,
                 tz: tzinfo | None = None) -> Message:
    body = t(lang, "test_body", channel=channel, orchestrator=orchestrator,
             at=local_time(at, tz))
    return Message(subject=mask(t(lang, "subject.test", channel=channel)),
                   body=mask(body + "\n\n" + t(lang, "footer")), level="info")
