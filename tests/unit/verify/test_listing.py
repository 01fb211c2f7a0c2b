"""Snapshot listings: nanosecond mtimes, streaming parse, snapshot choice."""

from __future__ import annotations

import json

from backupctl.verify.listing import (
    Listing,
    files_digest,
    ns_iso,
    pick,
    snapshot_refs,
    time_ns,
)


def test_time_ns_keeps_nanoseconds_and_offsets() -> None:
    utc = time_ns("2026-11-25T08:38:16.650610557Z")
    assert utc % 1_000_000_000 == 650610557
    assert time_ns("2026-11-25T17:38:16.650610557+09:00") == utc
    assert time_ns("2026-11-25T08:38:16Z") == utc - 650610557
    assert time_ns(ns_iso(utc)) == utc


def test_listing_streams_files_in_any_chunking() -> None:
    lines = [
        {"struct_type": "snapshot", "id": "ab" * 32, "time": "2026-11-25T08:38:16Z"},
        {"struct_type": "node", "type": "dir", "path": "/d", "mtime": "2026-11-25T08:38:16Z"},
        {"struct_type": "node", "type": "file", "path": "/d/new\nline", "size": 3,
         "mtime": "2026-11-25T08:38:16.1Z"},
        {"struct_type": "node", "type": "symlink", "path": "/d/l", "mtime": "2026-11-25T08:38:16Z"},
    ]
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    listing = Listing()
    for i in range(0, len(data), 7):
        listing.feed(data[i:i + 7])
    listing.close()
    assert listing.snapshot_id == "ab" * 32
    assert [(f.path, f.size) for f in listing.files] == [("/d/new\nline", 3)]
    assert listing.files[0].mtime_ns % 1_000_000_000 == 100_000_000


def test_pick_latest_prefix_and_copies() -> None:
    data = json.dumps([
        {"id": "b" * 64, "short_id": "b" * 8, "time": "2026-11-25T09:00:00Z"},
        {"id": "a" * 64, "short_id": "a" * 8, "time": "2026-11-25T08:00:00Z",
         "original": "c" * 64},
    ]).encode()
    refs = snapshot_refs(data)
    assert pick(refs, "latest") is refs[-1] and refs[-1].id == "b" * 64
    found = pick(refs, "aaaa")
    assert found is not None and found.original == "c" * 64
    assert pick(refs, "ffff") is None
    assert pick([], "latest") is None


def test_files_digest_is_of_paths_and_sizes_in_path_order_names_not_utf8_included() -> None:
    files = [("/b", 2), ("/a\nb", 1), ("/カルテ", 0)]
    assert files_digest(files) == files_digest(reversed(files))
    assert files_digest(files) != files_digest([("/b", 3), ("/a\nb", 1), ("/カルテ", 0)])
    assert files_digest(files) != files_digest(files[:2])
    # a name that is not UTF-8 counts as restic lists it (version 2 of the digest)
    assert files_digest([*files, ("/x\ufffd", 5)]) != files_digest(files)
    # a name crafted with a newline cannot pass for two entries
    assert files_digest([("/a", 1), ("/b", 1)]) != files_digest([('/a", 1]\n["/b', 1)])
