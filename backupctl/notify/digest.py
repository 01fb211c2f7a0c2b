"""`backupctl notify digest [--days 7]`: the period's summary to every channel.

Per job: backups (failed), proven restores (failed), files compared, copies (failed), open
findings; then the open findings in plain words. E-mail channels get the one-page
management summary (PDF) attached; chat channels get the text. Built from the same report
model as `backupctl report`, so the numbers agree with the inspector's report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from backupctl.clock import iso, system_clock
from backupctl.config.validate import Config
from backupctl.evidence import report as reports
from backupctl.evidence.period import Period
from backupctl.fmt import system_zone
from backupctl.notify import channels as delivery
from backupctl.notify import record
from backupctl.notify.model import Attachment, DeliveryResult, Message
from backupctl.notify.texts import t
from backupctl.state.db import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Digest:
    message: Message
    pdf: bytes | None
    deliveries: list[DeliveryResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.message.subject, "pdf_bytes": len(self.pdf or b""),
                "deliveries": [d.to_dict() for d in self.deliveries]}


def period_of(days: int, now: datetime, tz: tzinfo | None = None) -> Period:
    """The last `days` calendar days up to today, in `tz` (the configured timezone)."""
    zone = tz or system_zone()
    end = now.astimezone(zone).date()
    return Period(end - timedelta(days=max(days, 1) - 1), end, zone)


def compose(data: dict[str, Any], *, lang: str, attached: bool) -> Message:
    """The digest text from a report model (report.build)."""
    period = data["period"]
    summary = data["summary"]
    lines = [t(lang, "digest.intro", start=period["from"], end=period["to"],
               jobs=len(data["jobs"])), ""]
    for verdict in summary["verdicts"]:
        lines.append(f"[{verdict['verdict']}] {verdict['title']}: {verdict['evidence']}")
        lines += [f"    - {why}" for why in verdict["reasons"]]  # the summary's own words
    lines.append("")
    open_by_job: dict[str | None, int] = {}
    for finding in summary["findings"]:
        open_by_job[finding["job"]] = open_by_job.get(finding["job"], 0) + 1
    for job in data["jobs"]:
        totals = job["totals"]
        lines.append(t(lang, "digest.line", job=job["job"], backups=totals["backups"],
                       backups_failed=totals["backups_failed"],
                       restores=totals["restore_tests"] - totals["restore_tests_failed"],
                       restores_failed=totals["restore_tests_failed"],
                       files=totals["files_checked"], copies=totals["copies"],
                       copies_failed=totals["copies_failed"],
                       findings=open_by_job.get(job["job"], 0)))
    lines += ["", t(lang, "digest.findings") + ":"]
    if summary["findings"]:
        for finding in summary["findings"]:
            who = f"{finding['job']}: " if finding["job"] else ""
            lines.append(f"  - {who}{finding['text']}")
        if summary["more_findings"]:
            lines.append(f"  - … +{summary['more_findings']}")
    else:
        lines.append("  " + t(lang, "digest.none"))
    lines += ["", t(lang, "digest.attached" if attached else "digest.not_attached"), "",
              t(lang, "footer")]
    return Message(subject=t(lang, "subject.digest", start=period["from"], end=period["to"]),
                   body="\n".join(lines),
                   level="info" if summary["achieved"] else "alert")


def digest(config: Config, store: Store, days: int = 7, *,
           budget: delivery.Budget = delivery.DEFAULT_BUDGET,
           clock: Callable[[], datetime] = system_clock, send: bool = True) -> Digest:
    """Build the period's digest and (with `send`) deliver it to every channel."""
    lang = config.settings.notify.language
    moment = clock()
    period = period_of(days, moment, config.settings.tz)
    data = reports.build(config=config, store=store, period=period, lang=lang, now=moment)
    pdf: bytes | None = None
    try:
        from backupctl.evidence import render  # Jinja2 and WeasyPrint: only here

        pdf = render.render(data, "pdf", summary_only=True)
    except Exception as exc:
        log.warning("digest: the summary PDF could not be made: %s", exc)
    text = compose(data, lang=lang, attached=pdf is not None)
    result = Digest(message=text, pdf=pdf)
    if not send or not config.settings.notify.channels:
        return result
    attachment = [Attachment(f"backupctl-summary-{period.start}-{period.end}.pdf", pdf)] \
        if pdf is not None else []
    started = iso(moment)
    deliveries = delivery.deliver(config.settings.notify.channels, text, attachment,
                                  event="digest", sent_at=lambda: iso(clock()), budget=budget)
    record.record(store, deliveries, started_at=started, signer=record.signer_of(config))
    return Digest(message=text, pdf=pdf, deliveries=deliveries)
