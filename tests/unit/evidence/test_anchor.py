"""Evidence anchors in immutable copies: stored under a flat name every restic takes (0.18
refuses a --stdin-filename with a directory part), and found under both names, so anchors
stored before the change still count."""

from __future__ import annotations

import json

from backupctl.evidence import anchor
from backupctl.evidence.model import Entry
from backupctl.execute import Secret
from backupctl.execute.fake import FakeRunner
from backupctl.restic.run import Repo

REPO = Repo("vault", "/srv/vault", Secret("unit-test-anchor-password-7c1e"))
HASHES = ["a" * 64, "b" * 64]


def test_an_anchor_is_stored_under_a_name_without_a_directory() -> None:
    runner = FakeRunner()
    runner.on("backup", "--stdin", stdout=b'{"message_type":"summary","snapshot_id":"ab"}')
    entries = [Entry(seq, {"id": str(seq), "hash": HASHES[seq - 1]}) for seq in (1, 2)]

    stored = anchor.store(runner, REPO, entries, timeout=60)

    [call] = runner.calls
    name = call.words[call.words.index("--stdin-filename") + 1]
    assert name == f"backupctl-evidence.seq-00000001-00000002-{HASHES[1]}.jsonl"
    assert "/" not in name and (stored.first, stored.last, stored.hash) == (1, 2, HASHES[1])


def test_anchors_under_the_old_and_the_new_name_are_both_found() -> None:
    runner = FakeRunner()
    listed = [{"id": "1" * 64, "paths": [f"/backupctl-evidence/seq-00000001-00000003-"
                                         f"{HASHES[0]}.jsonl"]},
              {"id": "2" * 64, "paths": [f"/backupctl-evidence.seq-00000004-00000009-"
                                         f"{HASHES[1]}.jsonl"]},
              {"id": "3" * 64, "paths": ["/backupctl-evidence.notes.txt"]}]
    runner.on("snapshots", stdout=json.dumps(listed).encode())

    found = anchor.stored_in(runner, REPO, timeout=60)

    assert [(s.first, s.last, s.hash) for s in found] == [(1, 3, HASHES[0]), (4, 9, HASHES[1])]
