"""verify.manifest.build on a real tree (the local runner): names that are not UTF-8 are
hashed by their bytes and kept with them; names restic lists alike that size and mtime
cannot tell apart are `unverifiable`, never a reference."""

from __future__ import annotations

import base64
import hashlib
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
