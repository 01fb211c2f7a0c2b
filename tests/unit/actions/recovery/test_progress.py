"""actions.recovery.progress: the target's own count while restic reports nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

from backupctl.actions.recovery.progress import polled
from backupctl.execute.local import LocalRunner


def test_the_target_directory_is_counted_while_restic_is_silent(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x" * 1000)
    (tmp_path / "b").write_bytes(b"y" * 24)
    lines: list[dict[str, int]] = []

    with polled(LocalRunner(), str(tmp_path), lambda c: lines.append(json.loads(c)),
                interval=0.05):
        deadline = time.monotonic() + 30
        while not lines and time.monotonic() < deadline:
            time.sleep(0.02)

    assert lines[0] == {"message_type": "status", "bytes_restored": 1024, "files_restored": 2}


def test_restics_own_status_lines_stop_the_polling(tmp_path: Path) -> None:
    seen: list[bytes] = []
    with polled(LocalRunner(), str(tmp_path), seen.append, interval=0.3) as sink:
        assert sink is not None
        sink(b'{"message_type":"status","bytes_restored":5}\n')
        time.sleep(1.0)
    assert seen == [b'{"message_type":"status","bytes_restored":5}\n']


def test_no_terminal_no_polling(tmp_path: Path) -> None:
    with polled(LocalRunner(), str(tmp_path), None) as sink:
        assert sink is None
