"""Notification settings (SPEC §8): channels (e-mail, Apprise) in the global configuration,
dead-man's-switch pings in job files, and the one reader of a ping URL file.

A ping URL file holds a token. `read_ping_url` strips what an editor leaves around it (a
trailing space, CR, newline) and refuses anything else that is not one http(s) URL, so the
URL that is masked is exactly the URL that is sent (a stray space would otherwise make
urllib quote the token in an error). Its errors name the file, never what is in it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from backupctl.config.values import JOB_NAME, Duration, Strict, named, repeated
from backupctl.errors import BackupctlError
from backupctl.execute import Secret
from backupctl.secrets import read_private

PING_FILE_MAX = 4096  # bytes: a check URL is far shorter; anything longer is not one


class PingFileError(ValueError):
    """A ping URL file that cannot be used; the message names the file, never its text."""

    def __init__(self, message: str, *, unreadable: bool = False) -> None:
        super().__init__(message)
        self.unreadable = unreadable  # the file, not the URL in it, is the problem


def ping_url_problem(url: str) -> str | None:
    """Why `url` (already stripped) is not a check URL, or None; never quotes it."""
    if not url:
        return "it is empty (write the check URL on the first line)"
    if "\n" in url or "\r" in url:
        return "it holds more than one line (one check URL only)"
    if any(not "!" <= ch <= "~" for ch in url):
        # urllib would refuse it later with an error that quotes the URL (the token)
        return ("the URL contains whitespace, a control character or a non-ASCII character "
                "(percent-encode it, or remove what the editor added)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return "the URL cannot be parsed (a bad port or brackets)"
    if parts.scheme not in ("http", "https"):
        return "it does not hold an http:// or https:// URL"
    if not parts.hostname:
        return "the URL names no host"
    return None


def read_ping_url(path: Path) -> Secret:
    """The check URL in `path`, stripped and checked, as a Secret (masked in every message
    and record from now on, with and without a trailing slash). Raises PingFileError."""
    what = f"ping URL file {path}"
    try:
        data = read_private(path, "ping URL file")
    except BackupctlError as exc:
        raise PingFileError(str(exc), unreadable=True) from None
    if len(data) > PING_FILE_MAX:
        raise PingFileError(f"{what}: larger than {PING_FILE_MAX} bytes, not a check URL")
    try:
        url = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PingFileError(f"{what}: not UTF-8 text") from None
    if (problem := ping_url_problem(url)) is not None:
        raise PingFileError(f"{what}: {problem}")
    Secret(url.rstrip("/"))  # `URL` and `URL/fail` are sent without the trailing slash
    return Secret(url)


class Ping(Strict):
    """Dead-man's switch: per kind of run, a file holding a healthchecks.io-style check URL."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    backup: Path | None = Field(default=None, description="file holding the backup check URL")
    copy_: Path | None = Field(default=None, alias="copy",
                               description="file holding the copy check URL")
    verify: Path | None = Field(default=None, description="file holding the verify check URL")

    def file_for(self, kind: str) -> Path | None:
        return {"backup": self.backup, "copy": self.copy_, "verify": self.verify}.get(kind)

    @property
    def configured(self) -> bool:
        return any(path is not None for path in (self.backup, self.copy_, self.verify))


class JobNotify(Strict):
    ping: Ping = Field(default_factory=Ping)


NotifyEvent = Literal["failure", "recovery", "suspicious", "stale", "probe"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = ("failure", "recovery", "suspicious", "stale", "probe")
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"invalid e-mail address {value!r}: use name@domain, without a "
                         "display name")
    return value


class EmailChannel(Strict):
    """SMTP delivery: smtp:// (STARTTLS when the server offers it) or smtps:// (TLS)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    url: str = Field(description="smtp://[user@]host[:port] or smtps://[user@]host[:port]")
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    password_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _smtp_url(cls, url: str) -> str:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"invalid port in {url!r}") from None
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"invalid mail URL {url!r}: use smtp://[user@]host[:port] or "
                             "smtps://[user@]host[:port]")
        if parts.password is not None:
            raise ValueError("put the mail password in password_file, never in the URL")
        if parts.path not in ("", "/") or parts.query or parts.fragment or port == 0:
            raise ValueError(f"invalid mail URL {url!r}: only [user@]host[:port] after "
                             "the scheme")
        return url

    @field_validator("from_")
    @classmethod
    def _from(cls, value: str) -> str:
        return _address(value)

    @field_validator("to")
    @classmethod
    def _to(cls, values: list[str]) -> list[str]:
        return [_address(v) for v in values]

    @property
    def implicit_tls(self) -> bool:
        return urlsplit(self.url).scheme == "smtps"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (465 if self.implicit_tls else 25)

    @property
    def user(self) -> str | None:
        user = urlsplit(self.url).username
        return unquote(user) if user else None


class Channel(Strict):
    """Where notifications go: an e-mail channel or an Apprise URL file (chat and more)."""

    name: str = Field(pattern=JOB_NAME.pattern)
    email: EmailChannel | None = None
    apprise_file: Path | None = Field(
        default=None, description="file holding Apprise URL(s), one a line (they hold tokens)")

    @model_validator(mode="after")
    def _one_kind(self) -> Channel:
        if (self.email is None) == (self.apprise_file is None):
            raise ValueError("a channel has exactly one of email or apprise_file")
        return self


class Notify(Strict):
    """Notifications (SPEC §8): who is told, in which language, about which events."""

    language: Literal["ja", "en"] = "ja"
    events: list[NotifyEvent] = Field(default_factory=lambda: list(NOTIFY_EVENTS))
    repeat: Duration = Field(default=24 * 3600,
                             description="a still-failing job is reminded at most this often")
    stale_grace: Duration = Field(
        default=6 * 3600, description="a job is stale when its newest success is older than "
        "its schedule interval plus this")
    channels: list[Channel] = Field(default_factory=list)

    @field_validator("channels")
    @classmethod
    def _unique_names(cls, channels: list[Channel]) -> list[Channel]:
        names = [c.name for c in channels]
        if "ping" in names:
            raise ValueError("the channel name `ping` is reserved (the metrics of job pings)")
        if dupes := repeated(names):
            raise ValueError(f"channel names must be unique: {dupes}")
        return channels

    def channel(self, name: str) -> Channel:
        return named(self.channels, name)
