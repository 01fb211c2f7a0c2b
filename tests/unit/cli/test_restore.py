"""cli.restore: restic's --json status lines drive the progress bar."""

from __future__ import annotations

from backupctl.cli.restore import StatusLines


def test_status_lines_in_any_chunking_update_bytes_and_files() -> None:
    seen: list[tuple[int, int]] = []
    lines = StatusLines(lambda done, files: seen.append((done, files)))
    stream = (b'restoring <Snapshot 1a2b3c4d of [/srv]>\n'
              b'{"message_type":"status","percent_done":0.5,"bytes_restored":512,'
              b'"files_restored":3}\n{"message_type":"summary","bytes_restored":1024,'
              b'"files_restored":6}\nnot json {\n')
    for i in range(0, len(stream), 7):
        lines(stream[i:i + 7])
    assert seen == [(512, 3), (1024, 6)]
