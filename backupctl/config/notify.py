"""Notification settings (SPEC §8): channels (e-mail, Apprise) in the global configuration,
dead-man's-switch pings in job files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from backupctl.config.values import JOB_NAME, Duration, Strict, named, repeated


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
