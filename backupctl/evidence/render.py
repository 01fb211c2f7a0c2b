"""Render the report model (report.py) as HTML, PDF, CSV or JSON.

HTML comes from the Jinja2 template `templates/report.html.j2` and is well-formed XHTML
(it parses as XML); the PDF is that HTML through WeasyPrint with the Japanese font
IPAGothic (fonts-ipafont-gothic); CSV has a UTF-8 BOM so spreadsheet programs read the
Japanese text; JSON follows docs/report.schema.json.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, datetime, timezone, tzinfo
from typing import Any

import jinja2

from backupctl import fmt
from backupctl.errors import BackupctlError
from backupctl.evidence import charts
from backupctl.evidence.report import labels
from backupctl.log import mask_data

FORMATS = ("html", "pdf", "csv", "json")
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("backupctl.evidence", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)


def _policy(policy: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in policy.items()) or "–"


def _zone(report: dict[str, Any]) -> tzinfo:
    """The zone the report was built in: by name, else its fixed offset."""
    period = report["period"]
    if name := period.get("timezone"):
        return fmt.zone(name)
    offset = datetime.strptime(period["utc_offset"], "%z").utcoffset()
    return timezone(offset) if offset is not None else UTC


def _stamp(value: str | None, tz: tzinfo) -> str:
    """A stored time on the report zone's wall clock, to the minute."""
    if not value:
        return "–"
    shown = fmt.local(value, tz)
    return value if shown == "–" else shown


def html(report: dict[str, Any], *, summary_only: bool = False) -> str:
    """The report as XHTML; `summary_only`: just the one-page management summary."""
    template = _ENV.get_template("report.html.j2")
    tz = _zone(report)
    lang = report["lang"]
    return template.render(r=report, t=labels()[lang],
                           duration=lambda s: fmt.duration(s, lang),
                           zone=fmt.zone_label(tz), stamp=lambda v: _stamp(v, tz),
                           policy=_policy, summary_only=summary_only,
                           age_chart=charts.backup_age, restore_chart=charts.restore_time)


def pdf(report: dict[str, Any], *, summary_only: bool = False) -> bytes:
    # WeasyPrint logs every unsupported CSS property at WARNING; they are not our problem.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # missing native libraries (pango)
        raise BackupctlError(f"cannot produce a PDF: WeasyPrint is not usable ({exc}); "
                             "use --format html") from None
    data: bytes = HTML(string=html(report, summary_only=summary_only)).write_pdf()
    return data


CSV_COLUMNS = ("job", "description", "month", "backups", "backups_failed", "generations",
               "copies", "copies_failed", "probes", "probes_failed", "restore_tests",
               "restore_tests_failed", "files_checked", "mismatches", "max_restore_seconds",
               "rto_seconds", "drills", "drills_failed", "recoveries", "recoveries_failed",
               "suspicious", "clears")
def csv_text(report: dict[str, Any]) -> str:
    """One row per job and month, headed in the report's language (labels.yaml csv_*)."""
    words = labels()[report["lang"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([words[f"csv_{c}"] for c in CSV_COLUMNS])
    for job in report["jobs"]:
        for month in job["months"]:
            row = {"job": job["job"], "description": job["description"], **month}
            writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
    return "\ufeff" + buffer.getvalue()


def json_text(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


def render(report: dict[str, Any], fmt: str, *, summary_only: bool = False) -> bytes:
    """The report in `fmt`; every known secret masked (a last line of defence: the records
    it is built from are masked when they are written). `summary_only` (html, pdf): the
    management summary page alone (`report --summary`)."""
    report = mask_data(report)
    if fmt == "html":
        return html(report, summary_only=summary_only).encode("utf-8")
    if fmt == "pdf":
        return pdf(report, summary_only=summary_only)
    if fmt == "csv":
        return csv_text(report).encode("utf-8")
    if fmt == "json":
        return json_text(report).encode("utf-8")
    raise BackupctlError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
