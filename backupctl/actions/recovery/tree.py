"""What a snapshot holds, node by node, as the recovery must bring it back.

restic 0.14's `ls --json` carries no user/group names; `find --json --snapshot ID '*'` does
(beside uid/gid, mode, size and a symlink's target), so the proof can compare owners by name
when uid numbers differ on the replacement server. `--path` narrows it to subtrees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from backupctl.errors import ResticError
from backupctl.execute import Arg, Runner
from backupctl.restic import commands
from backupctl.restic import run as restic
from backupctl.restic.run import Repo

# Go's os.FileMode bits for the special permission bits (restic stores FileMode).
_GO_SETUID, _GO_SETGID, _GO_STICKY = 1 << 23, 1 << 22, 1 << 20


def permissions(go_mode: int) -> int:
    """A Go FileMode → the unix permission bits (0o7777) as `stat` shows them."""
    bits = go_mode & 0o777
    for go_bit, unix_bit in ((_GO_SETUID, 0o4000), (_GO_SETGID, 0o2000),
                             (_GO_STICKY, 0o1000)):
        if go_mode & go_bit:
            bits |= unix_bit
    return bits


@dataclass(frozen=True)
class Node:
    path: str  # absolute, as restic lists it (U+FFFD for bytes that are not UTF-8)
    type: str  # file | dir | symlink | dev | chardev | fifo | socket
    size: int
    mode: int  # 0o7777 bits
    uid: int
    gid: int
    user: str
    group: str
    link: str | None = None  # a symlink's target


@dataclass(frozen=True)
class Tree:
    snapshot_id: str
    nodes: tuple[Node, ...]

    @property
    def files(self) -> list[Node]:
        return [n for n in self.nodes if n.type == "file"]

    @property
    def bytes(self) -> int:
        return sum(n.size for n in self.files)

    def count(self, kind: str) -> int:
        return sum(1 for n in self.nodes if n.type == kind)


def under(path: str, wanted: str) -> bool:
    """`path` is `wanted` or inside it (a restored subtree)."""
    wanted = wanted.rstrip("/") or "/"
    return path == wanted or path.startswith(wanted if wanted == "/" else wanted + "/")


def _node(obj: dict[str, Any]) -> Node:
    return Node(path=str(obj["path"]), type=str(obj.get("type", "")),
                size=int(obj.get("size") or 0), mode=permissions(int(obj.get("mode") or 0)),
                uid=int(obj.get("uid") or 0), gid=int(obj.get("gid") or 0),
                user=str(obj.get("user") or ""), group=str(obj.get("group") or ""),
                link=obj.get("linktarget"))


def find_argv(repo: Repo, snapshot: str) -> list[Arg]:
    return [*commands.base(repo.url, repo.password, cache=False), "find", "--json",
            "--snapshot", snapshot, "--", "*"]


def nodes(runner: Runner, repo: Repo, snapshot: str, *, job: str, paths: list[str],
          timeout: float) -> Tree:
    """Every node of `snapshot` (or of the `paths` subtrees and the directories above them,
    which the restore creates too)."""
    result, _ = restic.run(runner, find_argv(repo, snapshot), job=job,
                           what=f"listing snapshot {snapshot[:8]} of {repo.name}",
                           timeout=timeout, unlock=repo)
    found = json.loads(result.stdout or b"[]") or []
    if len(found) != 1:
        raise ResticError(f"{job}: restic find printed {len(found)} snapshot(s) for "
                          f"{snapshot[:8]}, expected one")
    listed = [_node(m) for m in found[0].get("matches") or []]
    if paths:
        listed = [n for n in listed if any(under(n.path, p) for p in paths)]
    listed.sort(key=lambda n: n.path)
    return Tree(str(found[0].get("snapshot", snapshot)), tuple(listed))


def missing_paths(tree: Tree, paths: list[str]) -> list[str]:
    """The --path values the snapshot does not hold."""
    return [p for p in paths if not any(under(n.path, p) for n in tree.nodes)]
