"""systemd/backupctl-exporter.service: valid for systemd-analyze and hardened."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from backupctl.metrics.exporter import DEFAULT_LISTEN
from tests.conftest import need

UNIT = Path(__file__).resolve().parents[3] / "systemd" / "backupctl-exporter.service"


def test_systemd_analyze_verify_reports_nothing_but_the_missing_binary() -> None:
    result = subprocess.run([need("systemd-analyze"), "verify", str(UNIT)],
                            capture_output=True, text=True)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    unexpected = [line for line in lines
                  if not re.search(r"Command /\S+/backupctl is not executable", line)]
    assert unexpected == []


def test_unit_is_hardened_and_read_only() -> None:
    text = UNIT.read_text()
    for setting in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                    "ReadOnlyPaths=-/var/lib/backupctl", "CapabilityBoundingSet=\n",
                    f"exporter --listen {DEFAULT_LISTEN}"):
        assert setting in text, setting
    assert "ReadWritePaths" not in text
    result = subprocess.run([need("systemd-analyze"), "security", "--offline=true", str(UNIT)],
                            capture_output=True, text=True)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr
    assert float(match.group(1)) <= 2.5
