"""Source manifest: SHA-256 of chosen files on the source host, right after each backup.

Which files: the job's `verify.always` and `verify.canaries` (a listed directory means every
file under it) and a rotating deterministic sample (`verify.sample`, see sampling.py) of the
snapshot's other files. Sizes and mtimes come from the snapshot (`restic ls --json`); the
hashes from one `python3` process on the source host (hashing.REMOTE_SCRIPT) fed the file
list on stdin. A file whose size or mtime on the source no longer matches the snapshot (or
that changed while being hashed) is recorded as `changed` and never used as a reference, so
live data cannot raise false alarms.

A name that is not valid UTF-8 (restic lists it with U+FFFD) is found on the source by its
bytes (hashing.REMOTE_SCRIPT) and hashed like any other; the entry keeps the listed form as
`path` and the bytes as `raw_path` (names.py), which restore tests restore and compare. Only
a name that several files on the source share in restic's listing, and that their size and
mtime cannot tell apart, is `unverifiable`.

A manifest that cannot be built raises (the backup then fails with the reason): a restore
test without references could never prove anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backupctl.config.schema import Job
from backupctl.errors import CommandFailed
from backupctl.execute import Runner
from backupctl.state.records import ManifestSummary, ratio
from backupctl.verify import names, sampling
from backupctl.verify.hashing import REMOTE_SCRIPT
from backupctl.verify.listing import NOT_UTF8, FileNode, Listing, ns_iso

ROLES = ("always", "canary", "sample")
STATES = ("ok", "changed", "unreadable", "missing", "unverifiable")
UNVERIFIABLE_LISTED = 100  # names kept in the summary (the count is always complete)

# (how many manifests the job has, the (path, size, mtime) references of the newest
# `window` of them): the sample rotation's memory, from the state database.
History = Callable[[int], tuple[int, set[tuple[str, int, str]]]]


@dataclass(frozen=True)
class Manifest:
    snapshot_id: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    files_total: int = 0
    bytes_total: int = 0
    round_no: int = 0
    rounds: int = 1
    coverage: float = 0.0
    unverifiable: list[str] = field(default_factory=list)
    files_digest: str = ""  # listing.files_digest: what a full restore must bring back

    def count(self, *, role: str | None = None, state: str | None = None) -> int:
        return sum(1 for e in self.entries if (role is None or e["role"] == role)
                   and (state is None or e["state"] == state))

    def paths(self, state: str) -> list[str]:
        """The names (shown safely, names.shown) of the entries in `state`."""
        return [names.shown(names.decode_raw(e["path"], e.get("raw_path")))
                for e in self.entries if e["state"] == state]

    def summary(self) -> ManifestSummary:
        return ManifestSummary(
            files=len(self.entries), snapshot_id=self.snapshot_id,
            always=self.count(role="always"), canaries=self.count(role="canary"),
            sampled=self.count(role="sample"), references=self.count(state="ok"),
            changed_since_snapshot=self.paths("changed"), unreadable=self.paths("unreadable"),
            missing=self.paths("missing"), files_total=self.files_total,
            bytes_total=self.bytes_total, round=self.round_no, rounds=self.rounds,
            coverage=ratio(self.coverage), unverifiable=self.unverifiable[:UNVERIFIABLE_LISTED],
            unverifiable_count=len(self.unverifiable), files_digest=self.files_digest,
            files_digest_version=2)


def _under(path: str, wanted: str) -> bool:
    wanted = wanted.rstrip("/") or "/"
    return path == wanted or path.startswith(wanted if wanted == "/" else wanted + "/")


def _select(files: list[FileNode], wanted: list[str]) -> tuple[list[FileNode], list[str]]:
    """Files equal to or under each wanted path; the wanted paths that matched nothing."""
    chosen: dict[str, FileNode] = {}
    absent = []
    for item in wanted:
        hits = [f for f in files if _under(f.path, item)]
        if not hits:
            absent.append(item)
        chosen.update((f.path, f) for f in hits)
    return list(chosen.values()), absent


def item(node: FileNode) -> str | dict[str, Any]:
    """What the helper is asked for a listed file: its path, or, for a name restic lists
    with U+FFFD, the listed form with its size and mtime to find its bytes by."""
    if NOT_UTF8 not in node.path:
        return node.path
    return {"lossy": node.path, "size": node.size, "mtime_ns": node.mtime_ns}


def by_name(name: str) -> str | dict[str, Any]:
    """What the helper is asked for a file known by its name (bytes as surrogate escapes)."""
    raw = names.encode_raw(name)
    return name if raw is None else {"raw": raw}


def hash_on_source(runner: Runner, paths: Sequence[str | dict[str, Any]], *, job: str,
                   timeout: float | None) -> list[dict[str, Any]]:
    """One python3 process on the source host hashes every path (list on stdin; an item is
    `item(node)` or `by_name(name)`)."""
    if not paths:
        return []
    records: list[dict[str, Any]] = [{} for _ in paths]
    rest = b""

    def sink(chunk: bytes) -> None:
        nonlocal rest
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.strip():
                obj = json.loads(line)
                records[int(obj["i"])] = obj

    result = runner.run(["python3", "-I", "-c", REMOTE_SCRIPT],
                        stdin=json.dumps(paths).encode(), timeout=timeout, stdout_sink=sink)
    if not result.ok:
        hint = (" (python3 is required on the source host)"
                if result.returncode == 127 else "")
        raise CommandFailed(f"{job}: hashing the source manifest failed{hint} "
                            f"{result.describe()}")
    missing = [paths[i] for i, r in enumerate(records) if not r]
    if missing:
        first = missing[0]
        shown = first if isinstance(first, str) else first.get("lossy", first.get("raw"))
        raise CommandFailed(f"{job}: the source manifest helper on {runner.host} returned no "
                            f"result for {len(missing)} file(s), e.g. {names.shown(str(shown))!r}")
    return records


def _entry(node: FileNode, role: str, record: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": node.path, "size": node.size,
                             "mtime": ns_iso(node.mtime_ns), "sha256": None, "role": role,
                             "state": "ok", "note": None, "raw_path": record.get("raw")}
    if record.get("ambiguous"):
        entry.update(state="unverifiable", note=f"not told apart on the source: "
                     f"{record['error']}")
    elif "error" in record:
        entry.update(state="unreadable", note=f"cannot read on the source: {record['error']}")
    elif (record["size"], record["mtime_ns"]) != (node.size, node.mtime_ns):
        entry.update(state="changed", note=(
            f"changed since snapshot: source now {record['size']} bytes, mtime "
            f"{ns_iso(int(record['mtime_ns']))}"))
    elif not record.get("stable", False):
        entry.update(state="changed", note="changed while it was being hashed")
    else:
        entry["sha256"] = record["sha256"]
    return entry


# With `verify.prove_within`: the sample of a pool (freshness.choose_for_backup).
Chooser = Callable[[list[FileNode]], list[FileNode]]
# Hashes already taken on the source (`hash_early`), by the listed (path, size, mtime_ns).
Hashed = Mapping[tuple[str, int, int], dict[str, Any]]


@dataclass(frozen=True)
class Selection:
    """What a manifest of a listing hashes, and the rotation's state it was chosen by."""

    chosen: tuple[tuple[FileNode, str], ...]  # (node, role)
    absent_canaries: tuple[str, ...]
    round_no: int
    rounds: int
    seen: frozenset[tuple[str, int, str]]


def select(job: Job, listing: Listing, *, history: History, host: str,
           choose: Chooser | None = None) -> Selection:
    """The files to hash: `verify.always`, the canaries, and the sample (the rotation's, or
    `choose`'s with proof freshness)."""
    files = listing.files
    always, absent = _select(files, job.verify.always)
    if absent:
        raise CommandFailed(
            f"{job.name}: verify.always path(s) not in snapshot {listing.snapshot_id[:8]}: "
            f"{', '.join(repr(a) for a in absent)}. Check that they exist on {host} "
            "and are under source.paths and not excluded")
    canaries, absent_canaries = _select(files, job.verify.canaries)
    fixed = {f.path for f in always} | {f.path for f in canaries}
    pool = [f.path for f in files if f.path not in fixed]
    rounds = sampling.rounds(job.verify.sample, len(pool))
    count, seen = history(rounds - 1)
    by_path = {f.path: f for f in files}
    sampled = choose([by_path[p] for p in pool]) if choose is not None else [
        by_path[p] for p in sampling.choose(pool, sample=job.verify.sample,
                                            seed=sampling.seed_for(job.name), round_no=count)]
    chosen: list[tuple[FileNode, str]] = [(f, "always") for f in always]
    chosen += [(f, "canary") for f in canaries if f.path not in {a.path for a in always}]
    chosen += [(f, "sample") for f in sampled]
    return Selection(tuple(chosen), tuple(absent_canaries), count, rounds, frozenset(seen))


def hash_early(runner: Runner, selection: Selection, *, job: str,
               timeout: float | None) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Hash what `selection` chose (of a listing expected to be the snapshot's), for `build`
    to reuse where the snapshot lists the same file with the same size and mtime."""
    nodes = [node for node, _ in selection.chosen]
    records = hash_on_source(runner, [item(n) for n in nodes], job=job, timeout=timeout)
    return {(n.path, n.size, n.mtime_ns): r for n, r in zip(nodes, records, strict=True)}


def _reusable(node: FileNode, record: dict[str, Any] | None) -> bool:
    """A hash taken early stands for the listed file: the same size and mtime, unchanged
    while it was read (what `_entry` would accept of a hash taken now)."""
    return record is not None and "sha256" in record and bool(record.get("stable")) \
        and (record.get("size"), record.get("mtime_ns")) == (node.size, node.mtime_ns)


def build(job: Job, runner: Runner, listing: Listing, *, history: History,
          timeout: float | None, choose: Chooser | None = None,
          selection: Selection | None = None, hashed: Hashed | None = None) -> Manifest:
    """Hash the chosen files of the listed snapshot on the source host (through `runner`);
    `choose` picks the sample instead of the rotation (proof freshness). `selection`: made
    already of this very listing; `hashed`: hashes taken early, reused where they still
    stand for the listed file, the others taken now."""
    chosen = (selection or select(job, listing, history=history, host=runner.host,
                                  choose=choose))
    early = hashed or {}
    records: list[dict[str, Any] | None] = [
        early.get((n.path, n.size, n.mtime_ns)) for n, _ in chosen.chosen]
    todo = [i for i, (node, _) in enumerate(chosen.chosen) if not _reusable(node, records[i])]
    for i, record in zip(todo, hash_on_source(
            runner, [item(chosen.chosen[i][0]) for i in todo], job=job.name, timeout=timeout),
                         strict=True):
        records[i] = record
    entries = [_entry(node, role, rec or {}) for (node, role), rec
               in zip(chosen.chosen, records, strict=True)]
    entries += [{"path": c, "size": 0, "mtime": "", "sha256": None, "role": "canary",
                 "state": "missing", "note": "canary not in the snapshot", "raw_path": None}
                for c in chosen.absent_canaries]
    _refuse_unreadable(job, entries)
    seen = set(chosen.seen) | {(e["path"], e["size"], e["mtime"]) for e in entries
                               if e["state"] == "ok"}
    everything = listing.files
    covered = sum(1 for f in everything if (f.path, f.size, ns_iso(f.mtime_ns)) in seen)
    return Manifest(snapshot_id=listing.snapshot_id, entries=entries,
                    files_total=len(everything), bytes_total=listing.total_bytes,
                    round_no=chosen.round_no % chosen.rounds, rounds=chosen.rounds,
                    coverage=covered / len(everything) if everything else 0.0,
                    unverifiable=[e["path"] for e in entries if e["state"] == "unverifiable"],
                    files_digest=listing.digest)


def _refuse_unreadable(job: Job, entries: Iterable[dict[str, Any]]) -> None:
    bad = [f"{e['path']!r} ({e['note']})" for e in entries
           if e["role"] == "always" and e["state"] == "unreadable"]
    if bad:
        raise CommandFailed(f"{job.name}: verify.always file(s) cannot be read for the source "
                            f"manifest: {'; '.join(bad)}")
