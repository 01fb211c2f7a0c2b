"""Pure helpers of the restore test: include chunking, restic error parsing."""

from __future__ import annotations

from backupctl.actions.restore_test import checks, restore


def test_includes_are_split_below_the_argv_limit() -> None:
    paths = [f"/data/{'x' * 200}/{i}" for i in range(20_000)]
    chunks = list(restore._chunks(paths))
    assert [p for c in chunks for p in c] == paths
    limit = restore.INCLUDE_ARGV_BYTES
    assert all(sum(len(p) + len("--include") + 2 for p in c) <= limit for c in chunks)
    assert 3 <= len(chunks) <= 6  # a handful of restic processes, not one per file


def test_restore_errors_name_the_path() -> None:
    stderr = ("ignoring error for /src/a b: ciphertext verification failed\n"
              "ignoring error for /src/x: y: pack abc not found\nFatal: There were 2 errors\n")
    assert restore._restore_errors(stderr) == [
        ("/src/a b", "ciphertext verification failed"), ("/src/x: y", "pack abc not found")]
    assert restore._restore_errors("Fatal: There were 3 errors")[0][0] == "restore"
    assert restore._restore_errors("Fatal: wrong password") == []


def test_check_errors_keep_only_findings() -> None:
    pack = "cb" * 32
    text = (f"create exclusive lock for repository\nload indexes\ncheck all packs\n"
            f"Pack ID does not match, want {pack}, got {'00' * 32}\n"
            "Fatal: repository contains errors")
    assert checks._check_errors(text) == [f"Pack ID does not match, want {pack}, got "
                                          f"{'00' * 32}"]
