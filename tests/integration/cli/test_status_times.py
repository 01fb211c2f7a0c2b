"""`status` shows local times in the configured timezone, to the minute, with ages (#28)."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.conftest import Workspace


def test_status_shows_local_times_to_the_minute_and_json_keeps_iso(
        workspace: Workspace) -> None:
    workspace.job("alpha")
    workspace.write_config(timezone="Asia/Tokyo")
    assert workspace.run("backup", "alpha").returncode == 0
    shown = workspace.run("status", env={"COLUMNS": "300"})
    data = json.loads(workspace.run("status", "--json").stdout)["jobs"][0]

    assert shown.returncode == 0, shown.stderr
    stored = data["last_backup_at"]
    assert stored.endswith("+00:00")  # what is stored and exported stays ISO 8601 UTC
    tokyo = datetime.fromisoformat(stored).astimezone(ZoneInfo("Asia/Tokyo"))
    assert tokyo.strftime("%Y-%m-%d %H:%M") in shown.stdout
    assert "just now" in shown.stdout or "minute ago" in shown.stdout
    assert "times in Asia/Tokyo, UTC+09:00" in shown.stdout
    assert "+00:00" not in shown.stdout and stored[:19] not in shown.stdout
