"""The `notify` keys: channels, e-mail URLs, secret files that must stay private (issue #14)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backupctl.config.notify import (
    EmailChannel,
    PingFileError,
    ping_url_problem,
    read_ping_url,
)
from backupctl.errors import ConfigError
from backupctl.log import mask
from tests.unit.config.conftest import ConfigDir, valid_job


def _secret(cfg: ConfigDir, name: str, mode: int = 0o600) -> str:
    path = cfg.root / "secrets" / name
    path.write_text("json://127.0.0.1:1/x\n")
    path.chmod(mode)
    return str(path)


def _global(cfg: ConfigDir, notify: str) -> None:
    cfg.write_config(f"jobs_dir: {cfg.jobs_dir}\nstate_dir: {cfg.root / 'state'}\n"
                     f"scratch_dir: {cfg.root / 'scratch'}\n"
                     f"known_hosts: {cfg.root / 'known_hosts'}\n" + notify)


def problems(cfg: ConfigDir) -> list[str]:
    with pytest.raises(ConfigError) as info:
        cfg.load()
    return info.value.messages


def test_channels_load_with_defaults(cfg: ConfigDir) -> None:
    apprise = _secret(cfg, "teams")
    _global(cfg, f"""notify:
  channels:
    - name: it-mail
      email: {{url: "smtps://backupctl@mail.example:465", from: a@example.jp, to: [b@example.jp]}}
    - name: teams
      apprise_file: {apprise}
""")
    cfg.write_job("a", valid_job("a"))
    notify = cfg.load().settings.notify
    assert notify.language == "ja" and notify.repeat == 86400
    assert notify.events == ["failure", "recovery", "suspicious", "stale", "probe"]
    mail = notify.channel("it-mail").email
    assert mail is not None and mail.implicit_tls and mail.user == "backupctl"
    assert (mail.host, mail.port) == ("mail.example", 465)


@pytest.mark.parametrize(("url", "why"), [
    ("http://mail.example", "smtp://"),
    ("smtp://user:pw@mail.example", "password_file"),
    ("smtp://mail.example:99999", "port"),
    ("smtp://mail.example/path", "after the scheme"),
])
def test_bad_mail_urls(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        EmailChannel.model_validate({"url": url, "from": "a@b.c", "to": ["d@e.f"]})


def test_header_injection_in_an_address_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid e-mail address"):
        EmailChannel.model_validate({"url": "smtp://m", "from": "a@b.c\nBcc: x@y.z",
                                     "to": ["d@e.f"]})


def test_a_channel_needs_exactly_one_kind_and_a_unique_name(cfg: ConfigDir) -> None:
    apprise = _secret(cfg, "teams")
    _global(cfg, f"""notify:
  channels:
    - name: both
      apprise_file: {apprise}
      email: {{url: "smtp://m", from: a@b.c, to: [d@e.f]}}
""")
    assert problems(cfg) == [f"{cfg.config}:7: notify.channels[0]: a channel has exactly one "
                             "of email or apprise_file"]
    _global(cfg, f"""notify:
  channels:
    - name: dup
      apprise_file: {apprise}
    - name: dup
      apprise_file: {apprise}
""")
    assert problems(cfg) == [f"{cfg.config}:6: notify.channels: channel names must be "
                             "unique: dup"]
    _global(cfg, f"""notify:
  channels:
    - name: ping
      apprise_file: {apprise}
""")
    assert problems(cfg) == [f"{cfg.config}:6: notify.channels: the channel name `ping` is "
                             "reserved (the metrics of job pings)"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_secret_files_readable_by_others_or_owned_by_another_user_are_errors(
        cfg: ConfigDir) -> None:
    loose = _secret(cfg, "loose", 0o644)
    foreign = _secret(cfg, "foreign", 0o600)
    os.chown(foreign, 65534, 65534)
    password = _secret(cfg, "smtp", 0o640)
    _global(cfg, f"""notify:
  channels:
    - name: teams
      apprise_file: {loose}
    - name: other
      apprise_file: {foreign}
    - name: mail
      email: {{url: "smtp://u@m", from: a@b.c, to: [d@e.f], password_file: {password}}}
""")
    ping = _secret(cfg, "hc", 0o604)
    job = cfg.write_job("a", valid_job("a") + f"notify:\n  ping:\n    backup: {ping}\n")
    found = problems(cfg)
    assert f"{cfg.config}:8: notify.channels[0].apprise_file: Apprise URL file {loose} is " \
        "readable or writable by group/others (mode 0644): it holds a secret; run chmod 600 " \
        f"{loose}" in found, found
    assert any(p.startswith(f"{cfg.config}:10: notify.channels[1].apprise_file:")
               and "owned by uid 65534" in p for p in found), found
    assert any(p.startswith(f"{cfg.config}:12: notify.channels[2].email.password_file:")
               and "(mode 0640)" in p for p in found), found
    assert any(p.startswith(f"{job}:23: notify.ping.backup: ping URL file {ping}")
               and "(mode 0604)" in p for p in found), found


# -- ping URL files: stripped, checked, masked (issue #24) ----------------------------------

PING_TOKEN = "hc-secret-token-48d1c2"


def _ping_file(cfg: ConfigDir, text: str) -> Path:
    path = cfg.root / "secrets" / "hc-backup"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text.encode())
    path.chmod(0o600)
    return path


def _ping_job(cfg: ConfigDir, ping: Path) -> Path:
    cfg.write_config()
    return cfg.write_job("a", valid_job("a") + f"notify:\n  ping:\n    backup: {ping}\n")


@pytest.mark.parametrize("around", ["", "\n", " \n", "\r\n", "\t \r\n\n", "  "])
def test_a_ping_url_loses_what_an_editor_put_around_it_and_is_masked(
        cfg: ConfigDir, around: str) -> None:
    url = f"https://hc.example/ping/{PING_TOKEN}"
    path = _ping_file(cfg, around + url + around)
    _ping_job(cfg, path)
    cfg.load()
    assert read_ping_url(path).reveal() == url
    assert mask(f"POST {url}/fail: 503") == "POST ***/fail: 503"


def test_a_ping_url_with_a_trailing_slash_is_masked_with_and_without_it(cfg: ConfigDir) -> None:
    path = _ping_file(cfg, f"https://hc.example/{PING_TOKEN}-slash/\n")
    assert read_ping_url(path).reveal().endswith("-slash/")
    assert mask(f"https://hc.example/{PING_TOKEN}-slash") == "***"


@pytest.mark.parametrize(("text", "says"), [
    (f"https://hc.example/ping/{PING_TOKEN} x\n", "whitespace"),
    (f"https://hc.example/ping/{PING_TOKEN}\r\nhttps://other.example/\n", "more than one line"),
    (f"https://hc.example/ping/{PING_TOKEN}\x07\n", "control character"),
    (f"https://hc.example/ping/患者{PING_TOKEN}\n", "non-ASCII"),
    (f"ftp://hc.example/{PING_TOKEN}\n", "http:// or https://"),
    (f"hc.example/{PING_TOKEN}\n", "http:// or https://"),
    (f"https:///{PING_TOKEN}\n", "no host"),
    (f"https://hc.example:99999/{PING_TOKEN}\n", "cannot be parsed"),
    (" \n\n", "empty"),
])
def test_a_bad_ping_url_file_is_exit_2_naming_file_line_key_and_path_never_its_contents(
        cfg: ConfigDir, text: str, says: str) -> None:
    path = _ping_file(cfg, text)
    job = _ping_job(cfg, path)
    found = problems(cfg)
    assert len(found) == 1, found
    assert found[0].startswith(f"{job}:23: notify.ping.backup: ping URL file {path}: "), found
    assert says in found[0]
    assert PING_TOKEN not in found[0] and "hc.example" not in found[0]


def test_a_ping_url_file_that_is_not_utf8_or_too_long_is_refused(cfg: ConfigDir) -> None:
    path = _ping_file(cfg, "")
    path.write_bytes(b"https://hc.example/\xff\xfe")
    with pytest.raises(PingFileError, match="not UTF-8"):
        read_ping_url(path)
    path.write_bytes(b"https://hc.example/" + b"a" * 5000)
    with pytest.raises(PingFileError, match="larger than"):
        read_ping_url(path)


def test_ping_url_problem_accepts_plain_check_urls() -> None:
    for url in ("https://hc-ping.com/5f1c0b9e-0000-4000-8000-000000000000",
                "http://127.0.0.1:8000/ping/abc?create=1", "https://user:pw@kuma.local/api/push/x"):
        assert ping_url_problem(url) is None, url
