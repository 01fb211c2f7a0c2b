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
from datetime import datetime
from typing import Any

import jinja2

from backupctl import fmt
from backupctl.errors import BackupctlError
from backupctl.evidence.report import labels

FORMATS = ("html", "pdf", "csv", "json")
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("backupctl.evidence", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)


def _policy(policy: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in policy.items()) or "–"


def _stamp(value: str | None) -> str:
    if not value:
        return "–"
    try:
        return datetime.fromisoformat(value).astimezone().isoformat(timespec="minutes")
    except ValueError:
        return value


def html(report: dict[str, Any]) -> str:
    template = _ENV.get_template("report.html.j2")
    return template.render(r=report, t=labels()[report["lang"]], duration=fmt.duration,
                           policy=_policy, stamp=_stamp)


def pdf(report: dict[str, Any]) -> bytes:
    # WeasyPrint logs every unsupported CSS property at WARNING; they are not our problem.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # missing native libraries (pango)
        raise BackupctlError(f"cannot produce a PDF: WeasyPrint is not usable ({exc}); "
                             "use --format html") from None
    data: bytes = HTML(string=html(report)).write_pdf()
    return data


CSV_COLUMNS = ("job", "description", "month", "backups", "backups_failed", "generations",
               "copies", "copies_failed", "probes", "probes_failed", "restore_tests",
               "restore_tests_failed", "files_checked", "mismatches", "max_restore_seconds",
               "rto_seconds", "drills", "drills_failed", "suspicious", "clears")
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


def render(report: dict[str, Any], fmt: str) -> bytes:
    if fmt == "html":
        return html(report).encode("utf-8")
    if fmt == "pdf":
        return pdf(report)
    if fmt == "csv":
        return csv_text(report).encode("utf-8")
    if fmt == "json":
        return json_text(report).encode("utf-8")
    raise BackupctlError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
