"""verify.manifest.build on a real tree (the local runner): names that are not UTF-8 are
hashed by their bytes and kept with them; names restic lists alike that size and mtime
cannot tell apart are `unverifiable`, never a reference."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from backupctl.config.schema import Job
from backupctl.execute.local import LocalRunner
from backupctl.verify import manifest, names
from backupctl.verify.listing import FileNode, Listing


def _job(src: Path) -> Job:
    return Job.model_validate({
        "job": "share", "host": {"address": "local"}, "source": {"paths": [str(src)]},
        "repository": {"url": "/r", "password_file": "/pw"}, "generations": {"last": 2},
        "schedule": {"backup": "daily", "verify": "weekly"}, "verify": {"sample": "all"}})


def _write(path: bytes, data: bytes, mtime_ns: int) -> FileNode:
    with open(path, "wb") as handle:
        handle.write(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return FileNode(names.lossy(path), len(data), mtime_ns)


def test_names_not_utf8_are_hashed_by_their_bytes_and_alike_ones_are_unverifiable(
        tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    os.mkdir(root + b"/" + "患者".encode("cp932"))
    karte = root + b"/" + "患者".encode("cp932") + b"/" + "カルテ.txt".encode("cp932")
    nodes = [_write(karte, b"record", 1_700_000_000_123_456_789),
             _write(root + b"/plain.txt", b"plain", 1_700_000_000_000_000_000),
             # listed alike (one U+FFFD each), same size and mtime: cannot be told apart
             _write(root + b"/\x83.txt", b"a", 1_700_000_000_000_000_000),
             _write(root + b"/\x84.txt", b"b", 1_700_000_000_000_000_000)]
    listing = Listing(snapshot_id="s" * 64, files=nodes[:2] + nodes[2:3])
    listing.close()

    built = manifest.build(_job(tmp_path), LocalRunner(), listing,
                           history=lambda window: (0, set()), timeout=60)

    by_path = {e["path"]: e for e in built.entries}
    entry = by_path[names.lossy(karte)]
    assert entry["state"] == "ok" and entry["sha256"] == hashlib.sha256(b"record").hexdigest()
    assert base64.b64decode(entry["raw_path"]) == karte
    assert by_path[os.fsdecode(root + b"/plain.txt")]["raw_path"] is None
    alike = by_path[names.lossy(root + b"/\x83.txt")]
    assert (alike["state"], alike["sha256"], alike["raw_path"]) == ("unverifiable", None, None)
    summary = built.summary()
    assert summary.unverifiable == [names.lossy(root + b"/\x83.txt")]
    assert summary.unverifiable_count == 1 and summary.references == 2
    assert summary.files_digest_version == 2


class _Counting(LocalRunner):
    """The local runner, counting the files each hashing run is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    def run(self, argv, *, stdin=None, **kwargs):  # type: ignore[no-untyped-def]
        if stdin is not None:
            self.asked.append(len(json.loads(stdin)))
        return super().run(argv, stdin=stdin, **kwargs)


def test_hashes_taken_early_are_reused_only_where_they_still_stand_for_the_listed_file(
        tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    same = _write(root + b"/same.txt", b"same", 1_700_000_000_000_000_000)
    grown = _write(root + b"/grown.txt", b"old", 1_700_000_000_000_000_000)
    touched = _write(root + b"/touched.txt", b"old", 1_700_000_000_000_000_000)
    job, history = _job(tmp_path), (lambda window: (0, set[tuple[str, int, str]]()))
    kept = Listing(snapshot_id="k" * 64, files=[grown, same, touched])
    runner = _Counting()
    early = manifest.hash_early(runner, manifest.select(job, kept, history=history,
                                                        host="local"), job="share", timeout=60)
    # after the early hashing, before the snapshot's listing: two files change
    new_grown = _write(root + b"/grown.txt", b"longer", 1_700_000_000_000_000_000)
    new_touched = _write(root + b"/touched.txt", b"new", 1_700_000_000_000_000_001)
    listing = Listing(snapshot_id="n" * 64, files=[new_grown, same, new_touched])

    built = manifest.build(job, runner, listing, history=history, timeout=60, hashed=early)

    assert runner.asked == [3, 2], "the unchanged file is not hashed again"
    digest = {e["path"]: e["sha256"] for e in built.entries}
    assert digest == {os.fsdecode(root + b"/same.txt"): hashlib.sha256(b"same").hexdigest(),
                      os.fsdecode(root + b"/grown.txt"): hashlib.sha256(b"longer").hexdigest(),
                      os.fsdecode(root + b"/touched.txt"): hashlib.sha256(b"new").hexdigest()}


def test_an_early_hash_of_a_file_that_changed_while_read_is_taken_again(
        tmp_path: Path) -> None:
    node = _write(os.fsencode(tmp_path) + b"/f.txt", b"data", 1_700_000_000_000_000_000)
    listing = Listing(snapshot_id="n" * 64, files=[node])
    key = (node.path, node.size, node.mtime_ns)
    unstable = {"i": 0, "sha256": "0" * 64, "size": 4, "mtime_ns": node.mtime_ns,
                "stable": False}
    runner = _Counting()
    built = manifest.build(_job(tmp_path), runner, listing, timeout=60,
                           history=lambda window: (0, set()), hashed={key: unstable})
    assert runner.asked == [1]
    assert built.entries[0]["sha256"] == hashlib.sha256(b"data").hexdigest()
