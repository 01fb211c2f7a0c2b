"""The `notify` keys: channels, e-mail URLs, secret files that must stay private (issue #14)."""

from __future__ import annotations

import os

import pytest

from backupctl.config.notify import EmailChannel
from backupctl.errors import ConfigError
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
