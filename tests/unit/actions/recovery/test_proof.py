"""actions.recovery.proof on a real directory (the local runner): stat, owners by name,
differences, hashes against references."""

from __future__ import annotations

import hashlib
import os
import pwd
from pathlib import Path

import pytest

from backupctl.actions.recovery import proof
from backupctl.actions.recovery.target import Target
from backupctl.actions.recovery.tree import Node, Tree
from backupctl.actions.restore_test.snapshot import Reference, References
from backupctl.execute.local import LocalRunner
from backupctl.verify import names

ME = pwd.getpwuid(os.getuid()).pw_name


def _restored(tmp_path: Path) -> tuple[Target, Tree]:
    root = tmp_path / "t"
    data = root / "srv" / "d"
    data.mkdir(parents=True)
    (data / "a b\n'c'").write_bytes(b"hello")
    (data / "a b\n'c'").chmod(0o640)
    (data / "l").symlink_to("a b\n'c'")
    (root / "srv").chmod(0o755)
    data.chmod(0o750)
    uid, gid = os.getuid(), os.getgid()
    group = __import__("grp").getgrgid(gid).gr_name
    nodes = (Node("/srv", "dir", 0, 0o755, uid, gid, ME, group),
             Node("/srv/d", "dir", 0, 0o750, uid, gid, ME, group),
             Node("/srv/d/a b\n'c'", "file", 5, 0o640, uid, gid, ME, group),
             Node("/srv/d/l", "symlink", 0, 0o777, uid, gid, ME, group, link="a b\n'c'"))
    return Target("local", str(root)), Tree("snap", nodes)


def test_an_exact_tree_has_no_difference(tmp_path: Path) -> None:
    target, tree = _restored(tmp_path)
    stats = proof.stat_all(LocalRunner(), target, tree, job="j", timeout=60)
    assert proof.compare(target, tree, stats) == []
    assert proof.owner_fixes(target, tree, stats).count == 0


def test_each_difference_is_named(tmp_path: Path) -> None:
    target, tree = _restored(tmp_path)
    os.chmod(tmp_path / "t" / "srv" / "d", 0o755)
    (tmp_path / "t" / "srv" / "d" / "a b\n'c'").write_bytes(b"hello!")
    missing = Node("/srv/d/gone", "file", 3, 0o644, 0, 0, ME, ME)
    tree = Tree("snap", (*tree.nodes, missing))
    stats = proof.stat_all(LocalRunner(), target, tree, job="j", timeout=60)
    found = {(m.path.removeprefix(target.path), m.reason)
             for m in proof.compare(target, tree, stats)}
    # a name's newline shown escaped (names.shown): it cannot start a line of its own
    assert found == {("/srv/d", "mode"), ("/srv/d/a b\\x0a'c'", "size"),
                     ("/srv/d/gone", "missing")}


def test_an_owner_name_the_target_lacks_is_a_difference(tmp_path: Path) -> None:
    target, tree = _restored(tmp_path)
    node = tree.nodes[2]
    renamed = Node(node.path, "file", 5, 0o640, node.uid, node.gid, "no-such-user-xyz",
                   node.group)
    tree = Tree("snap", (*tree.nodes[:2], renamed, tree.nodes[3]))
    stats = proof.stat_all(LocalRunner(), target, tree, job="j", timeout=60)
    [mismatch] = proof.compare(target, tree, stats)
    assert mismatch.reason == "owner (no such user on the target)"
    assert mismatch.expected == "no-such-user-xyz"


def test_owner_fixes_follow_the_name_not_the_number(tmp_path: Path) -> None:
    target, tree = _restored(tmp_path)
    moved = tuple(Node(n.path, n.type, n.size, n.mode, n.uid + 4242, n.gid + 4242, n.user,
                       n.group, n.link) for n in tree.nodes)
    tree = Tree("snap", moved)
    stats = proof.stat_all(LocalRunner(), target, tree, job="j", timeout=60)
    # the names exist here with the current numbers: nothing to change, nothing different
    assert proof.owner_fixes(target, tree, stats).count == 0
    assert proof.compare(target, tree, stats) == []


def test_hashes_are_compared_with_the_references(tmp_path: Path) -> None:
    target, _ = _restored(tmp_path)
    good = hashlib.sha256(b"hello").hexdigest()
    refs = References("snap", (Reference("/srv/d/a b\n'c'", 5, good),
                               Reference("/srv/d/other", 1, good)), (), None)
    hashed = proof.hash_references(LocalRunner(), target, refs, paths=[], job="j", timeout=60)
    assert (hashed.files, hashed.bytes) == (1, 5)
    [bad] = hashed.mismatches
    assert bad.path == f"{target.path}/srv/d/other" and bad.reason == "unreadable"
    only = proof.hash_references(LocalRunner(), target, refs, paths=["/srv/d/a b\n'c'"],
                                 job="j", timeout=60)
    assert (only.files, only.mismatches) == (1, ())


def test_chown_paths_are_argv_words_in_chunks() -> None:
    paths = [f"/t/-rf {i:04d}" + "x" * 100 for i in range(3000)]
    chunks = list(proof._chunks(paths))
    assert len(chunks) > 1 and sum(len(c) for c in chunks) == 3000


def _cp932(tmp_path: Path) -> tuple[Target, Tree, bytes]:
    """A restored cp932 directory and file (names that are not UTF-8), as restic lists them
    (U+FFFD for each byte that is not UTF-8), plus a file listed alike twice."""
    root = tmp_path / "t"
    folder = os.fsencode(root) + b"/" + "患者".encode("cp932")
    os.makedirs(folder)
    path = folder + b"/" + "カルテ.txt".encode("cp932")
    with open(path, "wb") as handle:
        handle.write(b"hello")
    for twin in (b"\x83.txt", b"\x84.txt"):
        with open(os.fsencode(root) + b"/" + twin, "wb") as handle:
            handle.write(b"x")
    uid, gid = os.getuid(), os.getgid()
    group = __import__("grp").getgrgid(gid).gr_name
    listed = "/" + names.lossy("患者".encode("cp932"))
    nodes = (Node(listed, "dir", 0, 0o755, uid, gid, ME, group),
             Node(listed + "/" + names.lossy("カルテ.txt".encode("cp932")), "file", 5,
                  0o644, uid, gid, ME, group),
             Node("/\ufffd.txt", "file", 1, 0o644, uid, gid, ME, group),
             Node("/\ufffd.txt", "file", 1, 0o644, uid, gid, ME, group))
    os.chmod(folder, 0o755)
    os.chmod(path, 0o644)
    return Target("local", str(root)), Tree("snap", nodes), path


def test_names_not_utf8_are_found_compared_and_hashed_by_their_bytes(tmp_path: Path) -> None:
    target, tree, path = _cp932(tmp_path)
    stats = proof.stat_all(LocalRunner(), target, tree, job="j", timeout=60)
    assert proof.compare(target, tree, stats) == []
    assert proof.unverifiable(tree, stats) == ("/\ufffd.txt", "/\ufffd.txt"), \
        "two names listed alike cannot be told apart: not verifiable, never a pass by guess"
    name = os.fsdecode(path.removeprefix(os.fsencode(target.path)))
    ref = Reference(tree.nodes[1].path, 5, hashlib.sha256(b"hello").hexdigest(), name)
    refs = References("snap", (ref,), (), None)
    assert proof.hash_references(LocalRunner(), target, refs, paths=[], job="j",
                                 timeout=60).mismatches == ()
    with open(path, "wb") as handle:
        handle.write(b"HELLO")
    [bad] = proof.hash_references(LocalRunner(), target, refs, paths=[], job="j",
                                  timeout=60).mismatches
    assert bad.reason == "hash"
    assert bad.path.endswith("\\x8a\\xb3\\x8e\\xd2/\\x83J\\x83\\x8b\\x83e.txt")
    os.chmod(path, 0o600)
    stats = proof.stat_all(LocalRunner(), target, tree, job="j", timeout=60)
    [mode] = proof.compare(target, tree, stats)
    assert mode.reason == "mode" and mode.path == bad.path


def test_owners_of_names_not_utf8_are_fixed_by_their_bytes(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    target, tree, path = _cp932(tmp_path)
    # no owner names: the snapshot's numbers are wanted
    tree = Tree("snap", tuple(Node(n.path, n.type, n.size, n.mode, 4242, 4243, "", "")
                              for n in tree.nodes[:2]))
    stats = proof.stat_all(LocalRunner(), target, tree, job="j", timeout=60)
    fix = proof.owner_fixes(target, tree, stats)
    assert fix.count == 2 and not fix.chown, "by their bytes on stdin, not on a command line"
    proof.apply(LocalRunner(), fix, job="j", timeout=60)
    assert (os.lstat(path).st_uid, os.lstat(path).st_gid) == (4242, 4243)
    stats = proof.stat_all(LocalRunner(), target, tree, job="j", timeout=60)
    assert proof.compare(target, tree, stats) == []
