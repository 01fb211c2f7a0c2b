"""The status page as a WSGI application: `/` and its style sheet, read-only.

`backupctl exporter` hands it the requests for `/` and `/static/…` (metrics/exporter.py
keeps `/metrics` and `/healthz`, the methods allowed and the security headers). The page:
Japanese by default, English with `?lang=en` or `Accept-Language: en`; HTTP basic auth
when `web_password_file` is set (any user name, the password compared in constant time);
no form, no script, a meta refresh.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import jinja2
from sqlalchemy import Connection

from backupctl.clock import Clock, iso, system_clock
from backupctl.config.schema import Job
from backupctl.config.validate import Config
from backupctl.execute import Secret
from backupctl.fmt import LANGS, local, zone_label
from backupctl.state.view import Outcome, StateReader, StateUnavailable, StateView, outcomes_since
from backupctl.web.cards import DAY_SYMBOLS, DAYS, RESTORE_KINDS, Card, Context, card, first_day
from backupctl.web.schedules import Schedules
from backupctl.web.verdict import LEVELS, SYMBOLS, Judge, SiteVerdict, Timing, ordered, site
from backupctl.web.words import say, words

StartResponse = Callable[..., Any]
REFRESH_SECONDS = 60
STYLE = "/static/status.css"
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("backupctl.web", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)


def negotiate(query: str, accept_language: str) -> str:
    """`?lang=` wins, then the first of ja/en in Accept-Language by weight, then ja."""
    asked = parse_qs(query).get("lang", [""])[-1]
    if asked in LANGS:
        return asked
    weighted = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        try:
            weight = float(params.strip().removeprefix("q=")) if params else 1.0
        except ValueError:
            weight = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGS and weight > 0:
            weighted.append((-weight, i, primary))
    return min(weighted)[2] if weighted else "ja"


def authorized(header: str, password: Secret | None) -> bool:
    """No password configured, or `Basic base64(any-user:password)` with that password."""
    if password is None:
        return True
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        _, sep, given = base64.b64decode(encoded.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return False
    return bool(sep) and hmac.compare_digest(given, password.reveal().encode())


@dataclass(frozen=True)
class Page:
    """Everything the template prints."""

    lang: str
    other_lang: str
    w: dict[str, Any]
    verdict: SiteVerdict
    symbol: str
    updated: str
    cards: list[Card]
    days: int
    refresh: int
    style: str
    readable: bool
    invalid: list[str]  # job files that do not validate: by job name, never by path


def build(config: Config, jobs: Sequence[Job], reader: StateReader, *, lang: str,
          now: datetime, schedules: Schedules) -> Page:
    """The page's facts from one read snapshot of the state."""
    tz = config.settings.tz
    since = iso(datetime.combine(first_day(now, tz), datetime.min.time(), tz)
                - timedelta(hours=1))
    names = [j.name for j in jobs]
    try:
        view, (outcomes, running) = reader.read_with(jobs, lambda conn: (outcomes_since(
            conn, names, ("backup", *RESTORE_KINDS), since=since), running_now(conn)))
        readable = True
    except StateUnavailable:
        view, outcomes, running, readable = StateView(), [], {}, False
    by_job: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_job.setdefault(o.job, []).append(o)
    ctx = Context(now=now, tz=tz, lang=lang, schedules=schedules,
                  grace=config.settings.notify.stale_grace, running=running)
    cards = [card(job, _judge(job, view, ctx), by_job.get(job.name, []), ctx)
             for job in jobs] if readable else []
    rank = {name: i for i, (_, name) in enumerate(ordered((c.level, c.job) for c in cards))}
    cards.sort(key=lambda c: rank[c.job])
    # A job file that does not validate is a job that is not backed up: failing, shown.
    invalid = [say(lang, "problem.invalid_job_file", job=f.label) for f in config.invalid]
    verdict = site([c.level for c in cards] + ["failing"] * len(invalid), lang=lang,
                   readable=readable)
    w = words(lang)
    return Page(lang=lang, other_lang="en" if lang == "ja" else "ja", w=w, verdict=verdict,
                symbol=SYMBOLS[verdict.level],
                updated=w["updated"].format(time=local(now, tz), zone=zone_label(tz, now)),
                cards=cards, days=DAYS, refresh=REFRESH_SECONDS, style=STYLE,
                readable=readable, invalid=invalid)


def running_now(conn: Connection) -> dict[str, tuple[str, str, str]]:
    """job → (orchestrator, kind, since) of the live leases (several orchestrators on
    PostgreSQL, as `status` shows them); none on SQLite, where psycopg is not imported."""
    if conn.dialect.name != "postgresql":
        return {}
    from backupctl.state.leases import current_leases

    return {lease.job: (lease.orchestrator, lease.kind, lease.since)
            for lease in current_leases(conn) if lease.live}


def _judge(job: Job, view: StateView, ctx: Context) -> Judge:
    timing = Timing(backup_interval=ctx.schedules.interval(job.schedule.backup),
                    verify_interval=ctx.schedules.interval(job.schedule.verify),
                    grace=ctx.grace)
    return Judge(job=job, view=view, now=ctx.now, lang=ctx.lang, timing=timing)


def render(page: Page) -> str:
    return _ENV.get_template("status.html.j2").render(
        p=page, symbols=SYMBOLS, levels=LEVELS, day_symbols=DAY_SYMBOLS)


@functools.cache
def stylesheet() -> bytes:
    return resources.files("backupctl.web").joinpath("static/status.css").read_bytes()


class StatusPage:
    """WSGI: `/` (the page) and STYLE; the caller routes only these paths here."""

    def __init__(self, *, config: Callable[[], Config], jobs: Callable[[], Sequence[Job]],
                 reader: StateReader, password: Secret | None = None,
                 clock: Clock = system_clock, schedules: Schedules | None = None) -> None:
        self.config = config
        self.jobs = jobs
        self.reader = reader
        self.password = password
        self.clock = clock
        self.schedules = schedules or Schedules()

    paths = frozenset({"/", STYLE})

    def __call__(self, environ: dict[str, Any], start_response: StartResponse,
                 ) -> Iterable[bytes]:
        if not authorized(environ.get("HTTP_AUTHORIZATION", ""), self.password):
            body = b"401: this status page needs its password (web_password_file)\n"
            start_response("401 Unauthorized", [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("WWW-Authenticate", 'Basic realm="backupctl", charset="UTF-8"'),
                ("Content-Length", str(len(body)))])
            return [body]
        if environ.get("PATH_INFO") == STYLE:
            return _send(start_response, "200 OK", stylesheet(), "text/css; charset=utf-8",
                         cache="max-age=3600")
        lang = negotiate(environ.get("QUERY_STRING", ""),
                         environ.get("HTTP_ACCEPT_LANGUAGE", ""))
        now = self.clock().astimezone(UTC)
        page = build(self.config(), list(self.jobs()), self.reader, lang=lang, now=now,
                     schedules=self.schedules)
        status = "200 OK" if page.readable else "503 Service Unavailable"
        return _send(start_response, status, render(page).encode(),
                     "text/html; charset=utf-8", cache="no-store", vary="Accept-Language")


def _send(start_response: StartResponse, status: str, body: bytes, content_type: str, *,
          cache: str, vary: str | None = None) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))),
               ("Cache-Control", cache)]
    if vary:
        headers.append(("Vary", vary))
    start_response(status, headers)
    return [body]
