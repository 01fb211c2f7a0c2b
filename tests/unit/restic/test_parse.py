"""Parsers of restic's JSON output: samples captured from restic 0.14.0 (Debian 12) and
0.18.0 (Debian 13), read the same."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from backupctl.restic import parse

SUMMARY = (b'{"message_type":"status","percent_done":0,"total_files":1}\n'
           b'{"message_type":"summary","files_new":1,"files_changed":2,"files_unmodified":3,'
           b'"dirs_new":3,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":1,"tree_blobs":4,'
           b'"data_added":1395,"total_files_processed":6,"total_bytes_processed":300,'
           b'"total_duration":0.20777873,"snapshot_id":"4a04c7b9"}\n')

# restic 0.14 writes per-file errors and skipped paths to stderr, not stdout.
STDERR_EXIT_3 = (
    '{"message_type":"error","error":{"Op":"read","Path":"/proc/self/mem","Err":5},'
    '"during":"archival","item":"/proc/self/mem"}\n'
    '{"message_type":"error","error":{"Op":"open","Path":"/srv/a b","Err":13},'
    '"during":"archival","item":"/srv/a b"}\n'
    "Warning: at least one source file could not be read\n")


def test_backup_summary() -> None:
    out = parse.backup_output(SUMMARY)
    assert out.summary == parse.BackupSummary(
        snapshot_id="4a04c7b9", files_new=1, files_changed=2, files_unmodified=3,
        data_added=1395, total_files=6, total_bytes=300, duration=0.20777873, dirs=3)
    assert out.errors == [] and out.missing == []


SUMMARY_018 = (
    b'{"message_type":"summary","files_new":0,"files_changed":0,"files_unmodified":3,'
    b'"dirs_new":0,"dirs_changed":1,"dirs_unmodified":5,"data_blobs":0,"tree_blobs":1,'
    b'"data_added":351,"data_added_packed":286,"total_files_processed":3,'
    b'"total_bytes_processed":6,"total_duration":0.698174923,'
    b'"backup_start":"2026-12-08T02:47:06.427605288Z",'
    b'"backup_end":"2026-12-08T02:47:07.125780222Z",'
    b'"snapshot_id":"ee638bed7c72e774544c2e6ea2c59be7bd88bd4ad159efd4df56bad9f375bc68"}\n')


def test_a_0_18_summary_gives_the_whole_id_the_start_and_every_directory() -> None:
    summary = parse.backup_output(SUMMARY_018).summary
    assert summary is not None
    assert summary.snapshot_id == "ee638bed"  # recorded short, as 0.14's
    assert summary.full_id == ("ee638bed7c72e774544c2e6ea2c59be7bd88bd4ad159efd4df56bad9f375"
                               "bc68")
    assert summary.started == "2026-12-08T02:47:06.427605288Z"
    assert summary.dirs == 6


def test_a_0_14_summary_has_no_whole_id_and_no_start() -> None:
    summary = parse.backup_output(SUMMARY).summary
    assert summary is not None and summary.full_id is None and summary.started is None


def test_backup_errors_from_stderr_name_each_file_and_the_reason() -> None:
    out = parse.backup_output(SUMMARY, STDERR_EXIT_3)
    assert out.errors == [
        "/proc/self/mem: read failed: Input/output error (errno 5)",
        "/srv/a b: open failed: Permission denied (errno 13)",
    ]
    assert out.summary is not None


# restic 0.18 writes them to stdout, as messages.
STDOUT_EXIT_3_018 = (
    b'{"message_type":"error","error":{"message":"failed to save /proc/self/mem: read '
    b'/proc/self/mem: input/output error"},"during":"archival","item":"/proc/self/mem"}\n'
    b'{"message_type":"error","error":{"message":"failed to save /srv/a b: open /srv/a b: '
    b'permission denied"},"during":"archival","item":"/srv/a b"}\n'
    b'{"message_type":"error","error":{"message":"failed to save /srv/x: odd: trouble"},'
    b'"during":"archival","item":"/srv/x"}\n'
    b'{"message_type":"error","error":{"message":"lstat /srv/y: some new error"},'
    b'"during":"scan","item":"/srv/y"}\n' + SUMMARY)


def test_backup_errors_of_restic_0_18_read_as_0_14s() -> None:
    out = parse.backup_output(STDOUT_EXIT_3_018, "")
    assert out.errors == [
        "/proc/self/mem: read failed: Input/output error (errno 5)",
        "/srv/a b: open failed: Permission denied (errno 13)",
        "/srv/x: failed to save /srv/x: odd: trouble",
        "/srv/y: lstat failed: some new error",
    ]
    assert out.summary is not None


@pytest.mark.parametrize("line", [
    b"restoring <Snapshot 1a2b3c4d of [/srv/a b] at 2026-12-07 19:10:30 +0000 UTC by "
    b"root@emr> to /scratch/emr.full\n",  # 0.14
    b"restoring snapshot 1a2b3c4d of [/srv/a b] at 2026-12-07 19:10:30 +0000 UTC by "
    b"root@emr to /scratch/emr.full\nSummary: Restored 40 files/dirs\n"])  # 0.18
def test_the_snapshot_restore_names_is_read_from_every_version(line: bytes) -> None:
    assert parse.restored_snapshots(b"noise\n" + line) == {"1a2b3c4d"}


def test_backup_error_shapes() -> None:
    lines = "\n".join([
        '{"message_type":"error","error":{"message":"boom"},"during":"scan","item":"/x"}',
        '{"message_type":"error","error":"plain text","item":"/y"}',
        '{"message_type":"error","error":{},"during":"archival","item":"/z"}',
        '{"message_type":"error","error":{"Op":"lstat","Path":"/w"},"during":"scan"}',
    ])
    assert parse.backup_output(b"", lines).errors == [
        "/x: boom", "/y: plain text", "/z: archival failed", "/w: lstat failed"]


def test_skipped_source_paths_are_reported() -> None:
    stderr = "/srv/gone does not exist, skipping\n/srv/日本語 dir does not exist, skipping\n"
    out = parse.backup_output(SUMMARY, stderr)
    assert out.missing == ["/srv/gone", "/srv/日本語 dir"]


def test_no_summary_when_restic_printed_none() -> None:
    assert parse.backup_output(b"garbage\n{not json\n[1,2]\n").summary is None


SNAPSHOTS = (b'[{"time":"2026-11-25T08:39:05.018063313Z","tree":"4d5e","paths":["/tmp/ta/src"],'
             b'"hostname":"emr-db","username":"root","tags":["backupctl"],'
             b'"id":"ab0a71ec9d5593564e659cd5f7b211e38e2b5a5baa","short_id":"ab0a71ec"},'
             b'{"time":"2026-11-25T08:39:01.310119463+09:00","tree":"3b06","paths":["/a","/b"],'
             b'"hostname":"emr-db","username":"root","id":"4a04c7b9983bc3002642e24f1d30"}]')


def test_snapshots_are_sorted_oldest_first_with_nanoseconds_truncated() -> None:
    snaps = parse.snapshots(SNAPSHOTS)
    assert [s.short_id for s in snaps] == ["4a04c7b9", "ab0a71ec"]
    assert snaps[1].time == datetime(2026, 11, 25, 8, 39, 5, 18063, tzinfo=UTC)
    assert snaps[0].paths == ("/a", "/b")
    assert snaps[1].tags == ("backupctl",)
    assert snaps[0].tags == ()


def test_forget_kept_is_every_groups_keep_list_oldest_first() -> None:
    def snap(id_: str, time: str, tags: list[str]) -> dict[str, object]:
        return {"time": time, "id": id_ * 64, "short_id": id_ * 8, "hostname": "emr-db",
                "paths": ["/srv"], "tags": tags}

    groups = [{"tags": ["backupctl"], "keep": [snap("b", "2026-11-25T02:00:00.5Z",
                                                     ["backupctl"]),
                                                snap("a", "2026-11-24T02:00:00Z", ["backupctl"])],
               "remove": [snap("c", "2026-11-20T02:00:00Z", ["backupctl"])]},
              {"tags": ["backupctl-db"], "keep": [snap("d", "2026-11-25T02:00:01Z",
                                                       ["backupctl-db"])], "remove": None}]
    out = json.dumps(groups).encode() + b"\nloading indexes...\n[0:00] 100.00%\n"
    kept = parse.forget_kept(out)
    assert kept is not None
    assert [s.short_id for s in kept] == ["aaaaaaaa", "bbbbbbbb", "dddddddd"]


@pytest.mark.parametrize("out", [b"", b"loading indexes...\n", b"[{not json\n",
                                 b'[{"keep": [{"time": "x"}]}]\n'])
def test_forget_kept_is_none_without_its_json(out: bytes) -> None:
    assert parse.forget_kept(out) is None


def test_forget_kept_of_nothing_to_keep() -> None:
    assert parse.forget_kept(b"[]\n") == []


def test_snapshots_of_an_empty_repository() -> None:
    assert parse.snapshots(b"[]") == []
    assert parse.snapshots(b"") == []
    assert parse.snapshots(b"null") == []


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-25T08:39:05.018063313Z", datetime(2026, 11, 25, 8, 39, 5, 18063, tzinfo=UTC)),
    ("2026-11-25T08:39:05Z", datetime(2026, 11, 25, 8, 39, 5, tzinfo=UTC)),
    ("2026-11-25T17:39:05.5+09:00", datetime(2026, 11, 25, 8, 39, 5, 500000, tzinfo=UTC)),
])
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse.parse_time(text) == expected


LS = (b'{"time":"2026-11-25T08:39:08.940003105Z","tree":"7d99","paths":["/tmp/ta/src"],'
      b'"hostname":"vm","username":"root","id":"29bda55ec7a7","short_id":"29bda55e",'
      b'"struct_type":"snapshot"}\n'
      b'{"name":"src","type":"dir","path":"/src","uid":0,"gid":0,"mode":2147484141,'
      b'"mtime":"2026-11-25T08:39:05.747479152Z","struct_type":"node"}\n'
      b'{"name":"a","type":"file","path":"/src/a","uid":0,"gid":0,"size":3,"mode":420,'
      b'"mtime":"2026-11-25T08:39:01.299479361Z","struct_type":"node"}\n')


@pytest.mark.parametrize("chunk", [1, 7, 100, len(LS)])
def test_ls_parser_streams_in_any_chunk_size(chunk: int) -> None:
    parser = parse.LsParser()
    for i in range(0, len(LS), chunk):
        parser.feed(LS[i:i + chunk])
    parser.close()
    assert parser.snapshot is not None and parser.snapshot.short_id == "29bda55e"
    assert [(n.path, n.type, n.size) for n in parser.nodes] == [("/src", "dir", 0),
                                                                ("/src/a", "file", 3)]


def test_ls_parser_handles_a_last_line_without_newline() -> None:
    parser = parse.LsParser()
    parser.feed(LS.rstrip(b"\n"))
    parser.close()
    assert len(parser.nodes) == 2


def test_version() -> None:
    assert parse.version("restic 0.14.0 compiled with go1.19.8 on linux/amd64\n") == "0.14.0"
    assert parse.version("") == "unknown"
    assert parse.version("something else") == "unknown"


def test_forget_kept_of_restic_0_18_with_prune() -> None:
    """0.18's groups carry each snapshot's summary and program_version; prune's text (and
    its progress) follows on the same stdout."""
    kept = {"time": "2026-12-07T19:12:04.202627034Z", "tree": "c411", "paths": ["/srv"],
            "hostname": "emr-db", "username": "root", "program_version": "restic 0.18.0",
            "summary": {"files_new": 34, "total_bytes_processed": 2120367},
            "id": "9" * 64, "short_id": "99999999", "tags": ["backupctl"]}
    out = (json.dumps([{"tags": ["backupctl"], "host": "emr-db", "paths": None,
                        "keep": [kept], "remove": None, "reasons": []}]).encode()
           + b"\nloading indexes...\n[0:00] 100.00%  1 / 1 snapshots\nrepacking packs\ndone\n")
    found = parse.forget_kept(out)
    assert found is not None and [s.short_id for s in found] == ["99999999"]


def test_a_summary_of_restic_0_18_names_its_snapshot_by_the_short_id_as_0_14() -> None:
    full = ("737eac22b831d40bfc3f532824b75666307381d1e422889c194a4c06f19cb573")
    summary = (b'{"message_type":"summary","files_new":0,"dirs_new":2,"data_added_packed":667,'
               b'"total_files_processed":0,"total_bytes_processed":0,"total_duration":0.51,'
               b'"backup_start":"2026-12-07T19:11:55.480762684Z","snapshot_id":"'
               + full.encode() + b'"}\n')
    out = parse.backup_output(summary)
    assert out.summary is not None and out.summary.snapshot_id == "737eac22"
    assert parse.short_id(full) == parse.short_id("737eac22") == "737eac22"


def test_plain_stderr_unwraps_restic_0_18s_exit_error() -> None:
    stderr = ('{"message_type":"exit_error","code":1,"message":"Fatal: unable to save '
              'snapshot: open /emr-db: no such file or directory"}\n')
    assert parse.plain_stderr("noise\n" + stderr + "{not json exit_error\n") == (
        "noise\nFatal: unable to save snapshot: open /emr-db: no such file or directory\n"
        "{not json exit_error")
    assert parse.plain_stderr("Fatal: wrong password or no key found") == (
        "Fatal: wrong password or no key found")
