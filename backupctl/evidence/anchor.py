"""Anchors: the evidence chain's head written where the state database's writer cannot reach.

- After every run: the head (seq, hash) goes to the system log (journald/syslog, tag
  `backupctl-evidence`) and, when `evidence_anchor_file` is set, is appended to that file
  (`TIME<TAB>seq=N<TAB>HASH`, the format `evidence verify --anchor` reads).
- After every copy to an immutable copy: the records since that copy's last anchor are
  stored in it (`restic backup --stdin`, tag `backupctl-evidence`, host
  `backupctl-evidence`), one file per anchor, `/backupctl-evidence.seq-FIRST-LAST-HASH.jsonl`
  (the records as `{"seq": N, "record": {...}}` lines; a flat name, as restic 0.18 refuses a
  `--stdin-filename` with a directory part; anchors stored before are
  `/backupctl-evidence/seq-…` and read the same). The copy is append-only, so once stored
  an anchor cannot be taken back.

Because the chain links every record to the one before, an anchored (seq, hash) that still
matches the database proves every record up to it unchanged; a database head before the
newest anchor means records were deleted.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import syslog
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rfc8785

from backupctl.errors import ResticError
from backupctl.evidence.chain import Anchor, Entry, Problem, check_anchors
from backupctl.execute import Runner
from backupctl.restic import commands
from backupctl.restic import run as restic
from backupctl.restic.run import Repo
from backupctl.restic.watch import RetryWatch

TAG = "backupctl-evidence"
HOST = "backupctl-evidence"
_NAME = re.compile(r"/backupctl-evidence[./]seq-(\d+)-(\d+)-([0-9a-f]{64})\.jsonl$")


def log_head(seq: int, head: str, *, anchor_file: Path | None) -> None:
    """Write the head to the system log, and to the anchor file when there is one."""
    syslog.openlog("backupctl-evidence", syslog.LOG_PID, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_INFO, f"evidence head seq={seq} hash={head}")
    syslog.closelog()
    if anchor_file is not None:
        stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        with contextlib.suppress(FileNotFoundError), anchor_file.open(
                "a", encoding="utf-8") as handle:
            handle.write(Anchor(at=stamp, seq=seq, hash=head).line())


@dataclass(frozen=True)
class Stored:
    """One anchor stored in a copy: the records FIRST..LAST, the last one's hash."""

    first: int
    last: int
    hash: str
    snapshot_id: str

    def anchor(self) -> Anchor:
        return Anchor(at=self.snapshot_id[:8], seq=self.last, hash=self.hash)


def stored_in(runner: Runner, repo: Repo, *, timeout: float) -> list[Stored]:
    """The anchors a copy holds, oldest first (one `restic snapshots`)."""
    result, _ = restic.run(runner, [*commands.snapshots(repo.url, repo.password, host=HOST),
                                    "--tag", TAG], job=HOST,
                           what=f"listing the evidence anchors in {repo.name}",
                           timeout=timeout, unlock=repo)
    found = []
    for snap in json.loads(result.stdout or b"[]") or []:
        for path in snap.get("paths") or []:
            if (match := _NAME.search(str(path))) is not None:
                found.append(Stored(int(match.group(1)), int(match.group(2)), match.group(3),
                                    str(snap.get("id", ""))))
    return sorted(found, key=lambda s: s.last)


def store(runner: Runner, repo: Repo, entries: Sequence[Entry], *, timeout: float) -> Stored:
    """Store `entries` (the records since the copy's last anchor) in the copy."""
    first, last = entries[0], entries[-1]
    name = f"backupctl-evidence.seq-{first.seq:08d}-{last.seq:08d}-{last.hash}.jsonl"
    body = b"".join(rfc8785.dumps({"seq": e.seq, "record": e.record}) + b"\n" for e in entries)
    argv = [*commands.base(repo.url, repo.password), "backup", "--stdin",
            "--stdin-filename", name, "--host", HOST, "--tag", TAG, "--json"]
    result = runner.run(argv, stdin=body, timeout=timeout, stderr_watch=RetryWatch())
    if not result.ok:
        raise ResticError(f"storing evidence records {first.seq}–{last.seq} in copy "
                          f"{repo.name} failed {result.describe()}")
    return Stored(first.seq, last.seq, last.hash, "")


def pending(entries: Sequence[Entry], stored: Sequence[Stored]) -> list[Entry]:
    """The records after the newest anchor a copy holds."""
    last = max((s.last for s in stored), default=0)
    return [e for e in entries if e.seq > last]


def compare(entries: Sequence[Entry], stored: Sequence[Stored], *, copy: str) -> Problem | None:
    """Every anchor the copy holds must still be in the database, unchanged."""
    problem = check_anchors(entries, [s.anchor() for s in stored])
    if problem is None:
        return None
    return Problem(problem.seq, problem.id, problem.what,
                   f"immutable copy {copy}: {problem.message}")
