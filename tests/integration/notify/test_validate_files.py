"""`backupctl validate` (the real CLI) refuses a channel or ping file others can read."""

from __future__ import annotations

import subprocess

from tests.conftest import BACKUPCTL
from tests.integration.notify.conftest import TOKEN, Site


def test_a_world_readable_channel_file_is_exit_2_naming_file_and_mode(site: Site) -> None:
    site.apprise("teams", f"json://127.0.0.1:1/{TOKEN}")
    site.ping_url("backup", f"http://127.0.0.1:1/{TOKEN}")
    site.config()
    ok = subprocess.run([*BACKUPCTL, "-c", str(site.config_path), "validate"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    apprise = site.root / "secrets" / "teams-apprise"
    apprise.chmod(0o644)
    ping = site.root / "secrets" / "hc-backup"
    ping.chmod(0o640)

    bad = subprocess.run([*BACKUPCTL, "-c", str(site.config_path), "validate"],
                         capture_output=True, text=True, timeout=120)

    assert bad.returncode == 2
    assert f"notify.channels[0].apprise_file: Apprise URL file {apprise} is readable or " \
        "writable by group/others (mode 0644)" in bad.stderr, bad.stderr
    assert f"notify.ping.backup: ping URL file {ping} is readable or writable by " \
        "group/others (mode 0640)" in bad.stderr, bad.stderr
    assert TOKEN not in bad.stderr + bad.stdout
