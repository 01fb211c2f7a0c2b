"""actions.recovery.tree: restic's Go FileMode bits and the `find --json` nodes."""

from __future__ import annotations

import pytest

from backupctl.actions.recovery.tree import Node, Tree, missing_paths, permissions, under


@pytest.mark.parametrize(("go_mode", "bits"), [
    (416, 0o640),                       # -rw-r-----
    (2147484141, 0o755),                # drwxr-xr-x (ModeDir | 0755)
    (2147484136, 0o750),                # drwxr-x---
    (134218239, 0o777),                 # Lrwxrwxrwx
    ((1 << 23) | 0o755, 0o4755),        # setuid
    ((1 << 22) | (1 << 31) | 0o2775 & 0o777, 0o2775),  # setgid directory
    ((1 << 20) | (1 << 31) | 0o777, 0o1777),           # sticky /tmp-like
])
def test_permissions_from_go_file_modes(go_mode: int, bits: int) -> None:
    assert permissions(go_mode) == bits


def _node(path: str, kind: str = "file") -> Node:
    return Node(path, kind, 1, 0o644, 0, 0, "root", "root")


def test_a_path_selects_its_subtree_only() -> None:
    tree = Tree("s", (_node("/srv", "dir"), _node("/srv/a", "dir"), _node("/srv/a/x"),
                      _node("/srv/ab")))
    assert under("/srv/a/x", "/srv/a") and not under("/srv/ab", "/srv/a")
    assert under("/srv/a", "/") and under("/srv/a", "/srv/a/")
    assert missing_paths(tree, ["/srv/a", "/srv/b"]) == ["/srv/b"]
    assert tree.bytes == 2 and tree.count("dir") == 2
