"""The proof on the target: every node of the snapshot there, as the snapshot holds it.

Three passes on the target, each one process fed its paths as data on stdin:

1. `stat` (STAT below): type, size, permission bits, owner and group of every restored node,
   and the target's own user/group tables for the snapshot's names;
2. owners by name: restic 0.14 restores numeric uid/gid; where the snapshot's user or group
   name has another number on the replacement server, `chown -h` (through the runner, every
   path an argv word) gives the node the owner of that name (and `chmod` puts back set-id
   bits the kernel cleared on chown);
3. the proof itself: `stat` again, and the SHA-256 of every file the source manifest has a
   reference for, hashed on the target by the streaming helper (`hash_on_source`).

Every difference is a `Mismatch` naming the target's path (`names.shown`: a name that is not
UTF-8 escaped). A node restic lists with U+FFFD is found on the target by its bytes (STAT
runs hashing.FIND_SCRIPT's `find`), compared, given its owner (by OWN, its bytes on stdin:
an SSH command line carries only UTF-8) and hashed by its bytes; only one that several
names on the target are listed as is not verifiable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from backupctl.actions.recovery.target import Target
from backupctl.actions.recovery.tree import Node, Tree
from backupctl.actions.restore_test.snapshot import References
from backupctl.errors import CommandFailed
from backupctl.execute import Runner
from backupctl.state.records import Mismatch
from backupctl.verify import names
from backupctl.verify.hashing import FIND_SCRIPT
from backupctl.verify.listing import NOT_UTF8
from backupctl.verify.manifest import by_name, hash_on_source

ARGV_BYTES = 1 << 17  # per chown/chmod command line (SSH sends it as one string)

STAT = FIND_SCRIPT + r"""
import grp, json, pwd, sys
req = json.loads(sys.stdin.buffer.read().decode("utf-8"))
def look(table, names):
    out = {}
    for name in names:
        try:
            out[name] = table(name)[2]
        except KeyError:
            pass
    return out
def name(table, number):
    try:
        return table(number)[0]
    except KeyError:
        return ""
KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
         stat.S_IFCHR: "chardev", stat.S_IFBLK: "dev", stat.S_IFIFO: "fifo",
         stat.S_IFSOCK: "socket"}
out = sys.stdout
out.write(json.dumps({"users": look(pwd.getpwnam, req["users"]),
                      "groups": look(grp.getgrnam, req["groups"])}) + "\n")
for i, item in enumerate(req["paths"]):
    raw = None
    if isinstance(item, str):
        path = item.encode("utf-8")
    else:
        found = find(item)
        if len(found) != 1:
            out.write(json.dumps({"i": i, "ambiguous": len(found) > 1, "error": (
                "%d names are listed as this one" % len(found) if found
                else "No such file or directory")}) + "\n")
            continue
        path = found[0]
        raw = base64.b64encode(path).decode("ascii")
    try:
        st = os.lstat(path)
    except OSError as exc:
        out.write(json.dumps({"i": i, "error": exc.strerror or str(exc)}) + "\n")
        continue
    rec = {"i": i, "type": KINDS.get(stat.S_IFMT(st.st_mode), "other"), "size": st.st_size,
           "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
           "user": name(pwd.getpwuid, st.st_uid), "group": name(grp.getgrgid, st.st_gid)}
    if rec["type"] == "symlink":
        rec["link"] = lossy(os.readlink(path))  # as restic lists a link's target
    if raw is not None:
        rec["raw"] = raw
    out.write(json.dumps(rec) + "\n")
"""

# Owners (and set-id bits) for names that are not UTF-8: [[base64 path, uid, gid, mode|null]]
OWN = r"""
import base64, json, os, sys
failed = 0
for raw, uid, gid, mode in json.loads(sys.stdin.buffer.read().decode("utf-8")):
    path = base64.b64decode(raw)
    try:
        os.lchown(path, uid, gid)
        if mode is not None:
            os.chmod(path, mode)
    except OSError as exc:
        failed += 1
        sys.stderr.write("%r: %s\n" % (path, exc.strerror))
sys.exit(1 if failed else 0)
"""


def _item(target: Target, node: Node) -> str | dict[str, Any]:
    """How STAT is asked for a node: its path, or its listed form to find its bytes by."""
    path = target.root(node.path)
    return path if NOT_UTF8 not in node.path else {"lossy": path, "size": node.size}


def on_target(target: Target, node: Node, rec: dict[str, Any]) -> str:
    """The node's path on the target: the name STAT found by its bytes, else its own."""
    raw = rec.get("raw")
    return names.decode_raw(target.root(node.path), raw) if raw else target.root(node.path)


@dataclass(frozen=True)
class Stats:
    """What STAT found: per path a record (or `error`), and the target's name tables."""

    records: tuple[dict[str, Any], ...]
    uids: dict[str, int]
    gids: dict[str, int]


def stat_all(runner: Runner, target: Target, tree: Tree, *, job: str,
             timeout: float) -> Stats:
    nodes = tree.nodes
    request = {"paths": [_item(target, n) for n in nodes],
               "users": sorted({n.user for n in nodes if n.user}),
               "groups": sorted({n.group for n in nodes if n.group})}
    lines: list[bytes] = []
    rest = b""

    def sink(chunk: bytes) -> None:
        nonlocal rest
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        lines.extend(p for p in parts if p.strip())

    result = runner.run(["python3", "-I", "-c", STAT], stdin=json.dumps(request).encode(),
                        timeout=timeout, stdout_sink=sink)
    if not result.ok or not lines:
        raise CommandFailed(f"{job}: looking at the restored tree on {target.display()} "
                            f"failed {result.describe()}")
    tables = json.loads(lines[0])
    records: list[dict[str, Any]] = [{} for _ in nodes]
    for line in lines[1:]:
        obj = json.loads(line)
        records[int(obj["i"])] = obj
    return Stats(tuple(records), dict(tables["users"]), dict(tables["groups"]))


@dataclass(frozen=True)
class Fix:
    """Owner changes (and set-id bits to put back) the target needs."""

    chown: dict[str, list[str]] = field(default_factory=dict)  # "user:group" → paths
    chmod: dict[int, list[str]] = field(default_factory=dict)  # mode → paths
    # names that are not UTF-8: (base64 of the path, uid, gid, set-id mode or None), by OWN
    raw: list[tuple[str, int, int, int | None]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.chown.values()) + len(self.raw)


def _wanted(node: Node, stats: Stats) -> tuple[int, int]:
    """The uid and gid the node must have on the target: its name's number there when the
    name exists, else the snapshot's number."""
    return (stats.uids.get(node.user, node.uid), stats.gids.get(node.group, node.gid))


def owner_fixes(target: Target, tree: Tree, stats: Stats) -> Fix:
    fix = Fix()
    for node, rec in zip(tree.nodes, stats.records, strict=True):
        if "error" in rec or not rec:
            continue
        uid, gid = _wanted(node, stats)
        if (rec["uid"], rec["gid"]) == (uid, gid):
            continue
        if rec.get("raw"):
            setid = node.mode if node.type == "file" and node.mode & 0o6000 else None
            fix.raw.append((str(rec["raw"]), uid, gid, setid))
            continue
        path = target.root(node.path)
        fix.chown.setdefault(f"{uid}:{gid}", []).append(path)
        if node.type == "file" and node.mode & 0o6000:
            fix.chmod.setdefault(node.mode, []).append(path)
    return fix


def _chunks(paths: list[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    used = 0
    for path in paths:
        if chunk and used + len(path.encode()) + 3 > ARGV_BYTES:
            yield chunk
            chunk, used = [], 0
        chunk.append(path)
        used += len(path.encode()) + 3
    if chunk:
        yield chunk


def apply(runner: Runner, fix: Fix, *, job: str, timeout: float) -> None:
    """chown -h (a symlink itself, never what it points to), then chmod the set-id bits."""
    commands = [["chown", "-h", "--", owner, *chunk] for owner, paths in fix.chown.items()
                for chunk in _chunks(paths)]
    commands += [["chmod", "--", f"{mode:o}", *chunk] for mode, paths in fix.chmod.items()
                 for chunk in _chunks(paths)]
    for argv in commands:
        result = runner.run(argv, timeout=timeout)
        if not result.ok:
            raise CommandFailed(f"{job}: giving the restored files their owners by name "
                                f"failed {result.describe()}")
    if fix.raw:
        result = runner.run(["python3", "-I", "-c", OWN], stdin=json.dumps(fix.raw).encode(),
                            timeout=timeout)
        if not result.ok:
            raise CommandFailed(f"{job}: giving the restored files their owners by name "
                                f"failed on {result.host}: {names.shown(result.stderr)}")


def _differences(node: Node, rec: dict[str, Any], stats: Stats, path: str) -> list[Mismatch]:
    if not rec or "error" in rec:
        return [Mismatch(path=path, expected=node.type, got=rec.get("error"),
                         reason="missing")]
    found: list[Mismatch] = []
    if rec["type"] != node.type:
        found.append(Mismatch(path=path, expected=node.type, got=rec["type"], reason="type"))
        return found
    if node.type == "file" and rec["size"] != node.size:
        found.append(Mismatch(path=path, expected=str(node.size), got=str(rec["size"]),
                              reason="size"))
    if node.type == "symlink" and rec.get("link") != node.link:
        found.append(Mismatch(path=path, expected=node.link, got=rec.get("link"),
                              reason="link target"))
    if node.type != "symlink" and rec["mode"] != node.mode:
        found.append(Mismatch(path=path, expected=f"{node.mode:04o}", got=f"{rec['mode']:04o}",
                              reason="mode"))
    uid, gid = _wanted(node, stats)
    if rec["uid"] != uid or (node.user and node.user not in stats.uids):
        found.append(Mismatch(path=path, expected=node.user or str(node.uid),
                              got=rec.get("user") or str(rec["uid"]), reason=(
                                  "owner" if node.user in stats.uids or not node.user
                                  else "owner (no such user on the target)")))
    if rec["gid"] != gid or (node.group and node.group not in stats.gids):
        found.append(Mismatch(path=path, expected=node.group or str(node.gid),
                              got=rec.get("group") or str(rec["gid"]), reason=(
                                  "group" if node.group in stats.gids or not node.group
                                  else "group (no such group on the target)")))
    return found


def compare(target: Target, tree: Tree, stats: Stats) -> list[Mismatch]:
    """Every node present with its type, size, mode, owner and group (a symlink's target)."""
    found: list[Mismatch] = []
    for node, rec in zip(tree.nodes, stats.records, strict=True):
        if not rec.get("ambiguous"):
            found += _differences(node, rec, stats, names.shown(on_target(target, node, rec)))
    return found


def unverifiable(tree: Tree, stats: Stats) -> tuple[str, ...]:
    """Nodes several names on the target are listed as (restic's listed form)."""
    return tuple(node.path for node, rec in zip(tree.nodes, stats.records, strict=True)
                 if rec.get("ambiguous"))


@dataclass(frozen=True)
class Hashed:
    files: int
    bytes: int
    mismatches: tuple[Mismatch, ...]


def hash_references(runner: Runner, target: Target, refs: References, *, paths: list[str],
                    job: str, timeout: float) -> Hashed:
    """The SHA-256 of every referenced file (of the restored subtrees) on the target."""
    from backupctl.actions.recovery.tree import under

    chosen = [r for r in refs.refs if not paths or any(under(r.path, p) for p in paths)]
    records = hash_on_source(runner, [by_name(target.root(r.on_disk)) for r in chosen],
                             job=job, timeout=timeout)
    found: list[Mismatch] = []
    files = size = 0
    for ref, rec in zip(chosen, records, strict=True):
        path = names.shown(target.root(ref.on_disk))
        if "error" in rec:
            found.append(Mismatch(path=path, expected=ref.sha256, got=str(rec["error"]),
                                  reason="unreadable"))
            continue
        files += 1
        size += int(rec["size"])
        if rec.get("sha256") != ref.sha256:
            found.append(Mismatch(path=path, expected=ref.sha256, got=rec.get("sha256"),
                                  reason="hash"))
    return Hashed(files, size, tuple(found))
