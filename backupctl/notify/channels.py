"""Delivering one message to the configured channels: e-mail (smtplib) and Apprise.

Delivery is never in the way of a run: every channel gets the same bounded budget (a few
attempts with short connect/read timeouts, retried with tenacity while the budget lasts),
channels are tried side by side in daemon threads, and whatever has not finished when the
budget (plus a small margin) is spent is reported as failed and left behind. Nothing here
raises into the caller: every problem becomes a failed `DeliveryResult` whose error is one
masked line (never the message body, never a password or a token).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TypeVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from backupctl.config.notify import Channel, EmailChannel
from backupctl.errors import BackupctlError
from backupctl.execute import Secret
from backupctl.log import mask
from backupctl.notify.model import Attachment, DeliveryResult, Message
from backupctl.secrets import read_secret

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Budget:
    """How long one channel may take: `seconds` in all, each attempt at most `attempt`."""

    seconds: float = 12.0
    attempt: float = 5.0
    attempts: int = 3

    def attempt_timeout(self, deadline: float) -> float:
        return max(0.5, min(self.attempt, deadline - time.monotonic()))


DEFAULT_BUDGET = Budget()
_MARGIN = 3.0  # beyond the budget before a stuck channel is abandoned (DNS is not bounded)


class Transient(Exception):
    """Worth another attempt: the server could not be reached or did not answer."""


class Permanent(Exception):
    """Another attempt would fail the same way (bad credentials, unreadable file, …)."""


# -- e-mail -------------------------------------------------------------------------------

def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_email(cfg: EmailChannel, message: Message,
                attachments: Sequence[Attachment] = ()) -> EmailMessage:
    """A UTF-8 message (RFC 2047 subject, 8-bit-safe body) with optional attachments."""
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = cfg.from_
    mail["To"] = ", ".join(cfg.to)
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = make_msgid(domain=cfg.from_.rsplit("@", 1)[-1])
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    mail.set_content(message.body, charset="utf-8")
    for item in attachments:
        maintype, _, subtype = item.mime.partition("/")
        mail.add_attachment(item.content, maintype=maintype, subtype=subtype,
                            filename=item.filename)
    return mail


def _smtp_attempt(cfg: EmailChannel, mail: EmailMessage, *, timeout: float,
                  password: Secret | None) -> None:
    context = ssl.create_default_context()
    try:
        client: smtplib.SMTP = (
            smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=timeout, context=context)
            if cfg.implicit_tls else smtplib.SMTP(cfg.host, cfg.port, timeout=timeout))
    except (OSError, smtplib.SMTPException) as exc:
        raise Transient(f"cannot connect to {cfg.host}:{cfg.port}: {_describe(exc)}") from None
    try:
        with client:
            client.ehlo()
            encrypted = cfg.implicit_tls
            if not encrypted and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
                encrypted = True
            if cfg.user is not None:
                if password is None:
                    raise Permanent("the URL names a user but password_file is not set")
                if not encrypted and not _is_loopback(cfg.host):
                    raise Permanent(f"{cfg.host} offers no STARTTLS: refusing to send the "
                                    "password unencrypted (use smtps:// or a server with TLS)")
                client.login(cfg.user, password.reveal())
            client.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise Permanent(f"{cfg.host}:{cfg.port} refused the login: {_smtp_reply(exc)}") \
            from None
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        raise Permanent(f"{cfg.host}:{cfg.port} refused the message: {_describe(exc)}") \
            from None
    except ssl.SSLCertVerificationError as exc:
        raise Permanent(f"TLS certificate of {cfg.host} not trusted: {exc.verify_message}") \
            from None
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError) as exc:
        raise Transient(f"{cfg.host}:{cfg.port}: {_describe(exc)}") from None
    except smtplib.SMTPException as exc:
        raise Permanent(f"{cfg.host}:{cfg.port}: {_describe(exc)}") from None


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
        else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}".strip()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _smtp_reply(exc)
    if isinstance(exc, socket.timeout | TimeoutError):
        return "no answer in time (timed out)"
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


def _email_sender(cfg: EmailChannel, message: Message,
                  attachments: Sequence[Attachment]) -> Callable[[float], None]:
    try:
        password = read_secret(cfg.password_file, what="mail password file") \
            if cfg.password_file is not None else None
    except BackupctlError as exc:
        raise Permanent(str(exc)) from None
    mail = build_email(cfg, message, attachments)

    def attempt(timeout: float) -> None:
        _smtp_attempt(cfg, mail, timeout=timeout, password=password)

    return attempt


# -- Apprise ------------------------------------------------------------------------------

def apprise_urls(path: Path) -> list[Secret]:
    """The URLs in an Apprise URL file (one a line; blank lines and # comments skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Permanent(f"cannot read the Apprise URL file {path}: "
                        f"{getattr(exc, 'strerror', None) or exc.__class__.__name__}") from None
    urls = [Secret(line.strip()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    if not urls:
        raise Permanent(f"the Apprise URL file {path} holds no URL")
    return urls


def _apprise_sender(path: Path, message: Message) -> Callable[[float], None]:
    urls = apprise_urls(path)
    import apprise  # ~0.1-0.3 s: only when a message goes out

    # Apprise logs through the root logger; its lines can quote the URLs (tokens).
    logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
    client = apprise.Apprise()
    for number, url in enumerate(urls, 1):
        if not client.add(url.reveal()):
            raise Permanent(f"{path}: URL {number} is not one Apprise understands")
    kind = {"alert": apprise.NotifyType.FAILURE, "ok": apprise.NotifyType.SUCCESS}.get(
        message.level, apprise.NotifyType.INFO)

    def attempt(timeout: float) -> None:
        result = client.notify(body=message.body, title=message.subject, notify_type=kind,
                               timeout=timeout)
        if not result:
            raise Transient(f"Apprise: {result.status.name.lower()} ({result.failed_count} of "
                            f"{len(urls)} URL(s) failed)")

    return attempt


# -- one channel, bounded -----------------------------------------------------------------

def _sender(channel: Channel, message: Message,
            attachments: Sequence[Attachment]) -> Callable[[float], None]:
    if channel.email is not None:
        return _email_sender(channel.email, message, attachments)
    assert channel.apprise_file is not None
    return _apprise_sender(channel.apprise_file, message)


def deliver_one(channel: Channel, message: Message, attachments: Sequence[Attachment] = (), *,
                budget: Budget = DEFAULT_BUDGET,
                sleep: Callable[[float], None] = time.sleep) -> tuple[bool, str | None, int]:
    """(ok, error, attempts) for one channel; retries transient failures within `budget`."""
    deadline = time.monotonic() + budget.seconds
    attempts = 0
    try:
        send = _sender(channel, message, attachments)
        retrying = Retrying(
            retry=retry_if_exception_type(Transient),
            stop=stop_after_attempt(budget.attempts) | stop_after_delay(budget.seconds),
            wait=wait_exponential(multiplier=0.5, max=2), sleep=sleep, reraise=True)
        for attempt in retrying:
            with attempt:
                attempts += 1
                send(budget.attempt_timeout(deadline))
        return True, None, attempts
    except (Transient, Permanent) as exc:
        return False, mask(str(exc)), max(attempts, 1)
    except RetryError as exc:  # not raised with reraise=True; kept for safety
        return False, mask(str(exc)), max(attempts, 1)
    except Exception as exc:
        log.warning("notification channel %s: unexpected %s", channel.name,
                    exc.__class__.__name__)
        return False, mask(f"{exc.__class__.__name__}: {exc}"), max(attempts, 1)


def hard_deadline(budget: Budget) -> float:
    """Seconds after which a delivery (or ping) under `budget` is abandoned, answer or not."""
    return budget.seconds + _MARGIN


def within(tasks: Mapping[str, Callable[[], T]], *, seconds: float) -> dict[str, T]:
    """Run every task at once, each in a daemon thread of its own, and return the outcomes
    of those that finished within `seconds`.

    A task still running then is left behind: its outcome is missing, and a daemon thread
    never keeps the process alive. This is the hard bound behind every budget: a server
    that trickles one byte a second defeats socket timeouts (each read succeeds), and name
    resolution has no timeout at all."""
    outcomes: dict[str, T] = {}
    lock = threading.Lock()

    def run(name: str, task: Callable[[], T]) -> None:
        try:
            outcome = task()
        except Exception as exc:  # a task reports its own failures; never a traceback here
            log.warning("notification task %s: unexpected %s", name, exc.__class__.__name__)
            return
        with lock:
            outcomes[name] = outcome

    threads = [threading.Thread(target=run, args=(name, task), name=f"notify-{name}",
                                daemon=True) for name, task in tasks.items()]
    for thread in threads:
        thread.start()
    give_up = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, give_up - time.monotonic()))
    with lock:
        return dict(outcomes)


def deliver(channels: Sequence[Channel], message: Message,
            attachments: Sequence[Attachment] = (), *, event: str, sent_at: Callable[[], str],
            budget: Budget = DEFAULT_BUDGET, job: str | None = None, kind: str | None = None,
            repository: str | None = None, run_id: int | None = None) -> list[DeliveryResult]:
    """Send to every channel at once; returns one result per channel within the budget."""
    seconds = hard_deadline(budget)
    outcomes = within({c.name: functools.partial(deliver_one, c, message, attachments,
                                                 budget=budget) for c in channels},
                      seconds=seconds)
    results = []
    for channel in channels:
        ok, error, attempts = outcomes.get(
            channel.name, (False, f"gave up after {seconds:.0f}s (no answer)", 1))
        results.append(DeliveryResult(
            channel=channel.name, event=event, ok=ok, error=error, attempts=attempts, job=job,
            kind=kind, repository=repository, run_id=run_id, sent_at=sent_at()))
        if not ok:
            log.warning("notification via %s failed: %s", channel.name, error)
    return results
