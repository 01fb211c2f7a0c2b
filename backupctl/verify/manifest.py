"""Source manifest: SHA-256 of chosen files on the source host, right after each backup.

Which files: the job's `verify.always` and `verify.canaries` (a listed directory means every
file under it) and a rotating deterministic sample (`verify.sample`, see sampling.py) of the
snapshot's other files. Sizes and mtimes come from the snapshot (`restic ls --json`); the
hashes from one `python3` process on the source host (hashing.REMOTE_SCRIPT) fed the file
list on stdin. A file whose size or mtime on the source no longer matches the snapshot (or
that changed while being hashed) is recorded as `changed` and never used as a reference, so
live data cannot raise false alarms.

A manifest that cannot be built raises (the backup then fails with the reason): a restore
test without references could never prove anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.config.schema import Job
from backupctl.errors import CommandFailed, ResticError
from backupctl.execute import Runner
from backupctl.restic import commands as restic
from backupctl.state.schema import manifest as manifest_table
from backupctl.verify import sampling
from backupctl.verify.hashing import REMOTE_SCRIPT
from backupctl.verify.listing import FileNode, Listing, ns_iso

ROLES = ("always", "canary", "sample")
STATES = ("ok", "changed", "unreadable", "missing")


@dataclass(frozen=True)
class Manifest:
    snapshot_id: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    files_total: int = 0
    bytes_total: int = 0
    round_no: int = 0
    rounds: int = 1
    coverage_ratio: float = 0.0

    def rows(self, job: str) -> list[dict[str, Any]]:
        return [{"job": job, "snapshot_id": self.snapshot_id, **e} for e in self.entries]

    def count(self, *, role: str | None = None, state: str | None = None) -> int:
        return sum(1 for e in self.entries if (role is None or e["role"] == role)
                   and (state is None or e["state"] == state))

    def summary(self) -> dict[str, Any]:
        return {"files": len(self.entries), "snapshot_id": self.snapshot_id,
                "always": self.count(role="always"), "canaries": self.count(role="canary"),
                "sampled": self.count(role="sample"), "references": self.count(state="ok"),
                "changed_since_snapshot": [e["path"] for e in self.entries
                                           if e["state"] == "changed"],
                "unreadable": [e["path"] for e in self.entries if e["state"] == "unreadable"],
                "missing": [e["path"] for e in self.entries if e["state"] == "missing"],
                "files_total": self.files_total, "bytes_total": self.bytes_total,
                "round": self.round_no, "rounds": self.rounds,
                "coverage_ratio": self.coverage_ratio}


def list_snapshot(ctx: Context, job: Job, repo: repos.Repo, snapshot: str) -> Listing:
    """`restic ls --json` of one snapshot, streamed (one restic process)."""
    listing = Listing()
    repos.run_restic(ctx.local, restic.ls(repo.url, repo.password, snapshot), job=job.name,
                     what=f"listing snapshot {snapshot} of {repo.name}", timeout=ctx.timeout,
                     stdout_sink=listing.feed)
    listing.close()
    if not listing.snapshot_id:
        raise ResticError(f"{job.name}: restic ls printed no snapshot for {snapshot}")
    return listing


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


def _previous(ctx: Context, job: str, limit: int) -> tuple[int, set[tuple[str, int, str]]]:
    """How many manifests the job has, and the references of the newest `limit` of them."""
    with ctx.store.read() as conn:
        newest = func.max(manifest_table.c.id)
        ids = [r.snapshot_id for r in conn.execute(
            select(manifest_table.c.snapshot_id, newest.label("last"))
            .where(manifest_table.c.job == job)
            .group_by(manifest_table.c.snapshot_id).order_by(newest.desc()))]
        window = ids[:limit]
        seen: set[tuple[str, int, str]] = set()
        if window:
            seen = {(r.path, int(r.size), r.mtime) for r in conn.execute(
                select(manifest_table.c.path, manifest_table.c.size, manifest_table.c.mtime)
                .where(manifest_table.c.job == job, manifest_table.c.state == "ok",
                       manifest_table.c.snapshot_id.in_(window)))}
    return len(ids), seen


def hash_on_source(runner: Runner, paths: list[str], *, job: str,
                   timeout: float | None) -> list[dict[str, Any]]:
    """One python3 process on the source host hashes every path (list on stdin)."""
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
        raise CommandFailed(f"{job}: the source manifest helper on {runner.host} returned no "
                            f"result for {len(missing)} file(s), e.g. {missing[0]!r}")
    return records


def _entry(node: FileNode, role: str, record: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": node.path, "size": node.size,
                             "mtime": ns_iso(node.mtime_ns), "sha256": None, "role": role,
                             "state": "ok", "note": None}
    if "error" in record:
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


def build(ctx: Context, job: Job, runner: Runner, *, snapshot_id: str) -> Manifest | None:
    """Hash the chosen files of `snapshot_id` on the source host (through `runner`)."""
    listing = list_snapshot(ctx, job, repos.primary(job), snapshot_id)
    files = listing.files
    always, absent = _select(files, job.verify.always)
    if absent:
        raise CommandFailed(
            f"{job.name}: verify.always path(s) not in snapshot {listing.snapshot_id[:8]}: "
            f"{', '.join(repr(a) for a in absent)}. Check that they exist on {runner.host} "
            "and are under source.paths and not excluded")
    canaries, absent_canaries = _select(files, job.verify.canaries)
    fixed = {f.path for f in always} | {f.path for f in canaries}
    pool = [f.path for f in files if f.path not in fixed]
    rounds = sampling.rounds(job.verify.sample, len(pool))
    count, seen = _previous(ctx, job.name, rounds - 1)
    by_path = {f.path: f for f in files}
    sampled = [by_path[p] for p in sampling.choose(pool, sample=job.verify.sample,
                                                    seed=sampling.seed_for(job.name),
                                                    round_no=count)]
    chosen: list[tuple[FileNode, str]] = [(f, "always") for f in always]
    chosen += [(f, "canary") for f in canaries if f.path not in {a.path for a in always}]
    chosen += [(f, "sample") for f in sampled]
    records = hash_on_source(runner, [f.path for f, _ in chosen], job=job.name,
                             timeout=ctx.timeout)
    entries = [_entry(node, role, rec) for (node, role), rec in zip(chosen, records, strict=True)]
    entries += [{"path": c, "size": 0, "mtime": "", "sha256": None, "role": "canary",
                 "state": "missing", "note": "canary not in the snapshot"}
                for c in absent_canaries]
    _refuse_unreadable(job, entries)
    seen |= {(e["path"], e["size"], e["mtime"]) for e in entries if e["state"] == "ok"}
    covered = sum(1 for f in files if (f.path, f.size, ns_iso(f.mtime_ns)) in seen)
    return Manifest(snapshot_id=listing.snapshot_id, entries=entries, files_total=len(files),
                    bytes_total=listing.total_bytes, round_no=count % rounds, rounds=rounds,
                    coverage_ratio=round(covered / len(files), 6) if files else 0.0)


def _refuse_unreadable(job: Job, entries: Iterable[dict[str, Any]]) -> None:
    bad = [f"{e['path']!r} ({e['note']})" for e in entries
           if e["role"] == "always" and e["state"] == "unreadable"]
    if bad:
        raise CommandFailed(f"{job.name}: verify.always file(s) cannot be read for the source "
                            f"manifest: {'; '.join(bad)}")
