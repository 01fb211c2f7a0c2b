"""Scratch directories: 0700, owned, never following a planted symbolic link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from backupctl.actions.restore_test import scratch
from backupctl.errors import CommandFailed, ConfigError


def test_scratch_dir_is_created_0700_and_test_dirs_are_0700(tmp_path: Path) -> None:
    base = tmp_path / "scratch"
    made = scratch.make(base, "emr", "full")
    assert stat.S_IMODE(base.stat().st_mode) == 0o700
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert made.parent == base and made.name.startswith("emr.full-")


def test_a_scratch_dir_writable_by_others_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "scratch"
    base.mkdir()
    base.chmod(0o777)
    with pytest.raises(ConfigError, match="writable by group or others") as refused:
        scratch.make(base, "emr", "quick")
    assert list(base.iterdir()) == [], "nothing was restored there"
    # the hint gives what database restore tests need (0711), never a 0700 they would fail
    assert f"run: chmod 711 {base}" in str(refused.value) and "700" not in str(refused.value)
    base.chmod(0o711)  # following it works
    assert scratch.make(base, "emr", "quick").parent == base


def test_a_scratch_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the directory away")
    base = tmp_path / "scratch"
    base.mkdir(mode=0o700)
    os.chown(base, 65534, 65534)
    with pytest.raises(ConfigError, match="owned by uid 65534"):
        scratch.prepare(base)


def test_a_symlinked_scratch_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "scratch").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="symbolic link"):
        scratch.prepare(tmp_path / "scratch")


def test_wipe_removes_read_only_trees(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("x")
    (tree / "a" / "b").chmod(0o500)
    (tree / "a").chmod(0o000)
    scratch.wipe(tree)
    assert not tree.exists()
    scratch.wipe(tree)  # nothing there: no error


def test_a_planted_leftover_symlink_is_removed_without_touching_its_target(
        tmp_path: Path) -> None:
    base = tmp_path / "scratch"
    base.mkdir(mode=0o700)
    target = tmp_path / "etc"
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "passwd").write_text("root:x:0:0")
    target.chmod(0o755)
    (base / "emr.quick-x").symlink_to(target)
    (base / "emr.full-y").mkdir()
    (base / "emr.full-y" / "link").symlink_to(target / "sub")
    (base / "other.quick-z").mkdir()

    assert sorted(p.name for p in scratch.wipe_leftovers(base, "emr")) == [
        "emr.full-y", "emr.quick-x"]

    assert (target / "sub" / "passwd").read_text() == "root:x:0:0", "the target is untouched"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755, "its mode too"
    assert sorted(p.name for p in base.iterdir()) == ["other.quick-z"]


def test_not_enough_free_space_is_a_failure_naming_the_sizes(tmp_path: Path) -> None:
    with pytest.raises(CommandFailed, match="not enough free space"):
        scratch.require_free_space(tmp_path / "scratch", 1 << 60, job="emr")
