"""restic argv builders: passwords only as SecretFile after --password-file; globs escaped."""

from __future__ import annotations

import fnmatch

import pytest

from backupctl.execute import Arg, Secret, SecretFile, display
from backupctl.restic import commands

PW = Secret("hunter2-not-in-argv")
OTHER = Secret("second-password-xyz")


def _all_builders() -> list[list[Arg]]:
    return [
        commands.init("/repo", PW),
        commands.backup("/repo", PW, host="emr-db", paths=["/srv/a b", "-rf"],
                        exclude=["*.tmp"]),
        commands.forget("/repo", PW, host="emr-db", policy={"last": 7, "daily": 14}),
        commands.snapshots("/repo", PW, host="emr-db"),
        commands.ls("/repo", PW, "abc123"),
        commands.restore("/repo", PW, snapshot="abc", target="/scratch", include=["/a*b"]),
        commands.check("/repo", PW, read_data_subset=0.1),
        commands.copy("/dest", OTHER, source="/repo", source_password=PW, snapshot_ids=["abc"]),
        commands.unlock("/repo", PW),
        commands.dump("/repo", PW, snapshot="abc", path="/emr-db/emr.pgdump"),
    ]


@pytest.mark.parametrize("argv", _all_builders(), ids=lambda a: str(a[5]) if len(a) > 5 else "")
def test_passwords_are_secret_files_right_after_a_password_option(argv: list[Arg]) -> None:
    for i, arg in enumerate(argv):
        if isinstance(arg, SecretFile):
            assert argv[i - 1] in ("--password-file", "--from-password-file")
        else:
            assert isinstance(arg, str)
            assert PW.reveal() not in arg and OTHER.reveal() not in arg
    assert "hunter2" not in display(argv)
    assert "<secret>" in display(argv)


def test_copy_puts_the_destination_in_repo_and_the_source_in_from_repo() -> None:
    argv = commands.copy("/dest", OTHER, source="/repo", source_password=PW,
                         snapshot_ids=["s1", "s2"], host="emr-db")
    assert argv[argv.index("--repo") + 1] == "/dest"
    assert argv[argv.index("--password-file") + 1] == SecretFile(OTHER)
    assert argv[argv.index("--from-repo") + 1] == "/repo"
    assert argv[argv.index("--from-password-file") + 1] == SecretFile(PW)
    assert argv[-2:] == ["s1", "s2"]
    assert argv[argv.index("--host") + 1] == "emr-db"


def test_backup_ends_options_before_the_paths() -> None:
    argv = commands.backup("/repo", PW, host="emr-db", paths=["-rf", "/x"], exclude=["*.tmp"])
    assert argv[-3:] == ["--", "-rf", "/x"]
    assert argv[argv.index("--exclude") + 1] == "*.tmp"
    assert argv[argv.index("--host") + 1] == "emr-db"
    assert "--json" in argv


def test_forget_applies_the_policy_per_host_and_tags_and_prunes() -> None:
    argv = commands.forget("/repo", PW, host="emr-db", policy={"last": 7, "daily": 14})
    words = [str(a) for a in argv]
    assert words[words.index("--keep-last") + 1] == "7"
    assert words[words.index("--keep-daily") + 1] == "14"
    assert words[-1] == "--prune"
    # files (tag backupctl) and each database's dumps (backupctl-db:NAME) are apart
    assert words[words.index("--group-by") + 1] == "host,tags"
    assert "--prune" not in commands.forget("/repo", PW, host="h", policy={"last": 1},
                                            prune=False)


def test_latest_of_the_job_s_files_is_narrowed_by_host_and_tag() -> None:
    words = [str(a) for a in commands.restore("/repo", PW, snapshot="latest", target="/t",
                                              host="emr-db", tags=[commands.FILES_TAG])]
    assert words[words.index("--host") + 1] == "emr-db"
    assert words[words.index("--tag") + 1] == "backupctl"
    assert commands.is_database(("backupctl-db", "backupctl-db:emr"))
    assert not commands.is_database(("backupctl",))


def test_dump_reads_one_file_of_a_snapshot_past_the_cache() -> None:
    words = [str(a) for a in commands.dump("/repo", PW, snapshot="1f753783",
                                           path="/emr-db/emr.pgdump")]
    assert words[-5:] == ["--no-cache", "dump", "--", "1f753783", "/emr-db/emr.pgdump"]


def test_reads_for_verification_bypass_the_cache() -> None:
    assert "--no-cache" in commands.check("/repo", PW, read_data_subset=None)
    assert "--no-cache" in commands.restore("/repo", PW, snapshot="s", target="/t")
    assert "--no-cache" not in commands.backup("/repo", PW, host="h", paths=["/x"], exclude=[])


def test_restore_of_latest_is_narrowed_to_the_job_host() -> None:
    argv = commands.restore("/repo", PW, snapshot="latest", target="/t", host="emr-db")
    assert argv[argv.index("--host") + 1] == "emr-db" and argv[-2:] == ["--", "latest"]
    assert "--host" not in commands.restore("/repo", PW, snapshot="abc", target="/t")


def test_check_read_data_subset_is_a_percentage() -> None:
    assert "--read-data-subset=10%" in commands.check("/repo", PW, read_data_subset=0.1)
    assert "--read-data-subset=2.5%" in commands.check("/repo", PW, read_data_subset=0.025)
    assert not [a for a in commands.check("/repo", PW, read_data_subset=None)
                if str(a).startswith("--read-data")]


@pytest.mark.parametrize("name", ["star*?[x]", "back\\slash", "a?b", "[abc]", "plain",
                                  "スキャン 001.pdf", "x;y$(touch pwned)"])
def test_escape_glob_matches_only_the_file_itself(name: str) -> None:
    escaped = commands.escape_glob(f"/data/{name}")
    # restic (Go filepath.Match) treats a backslash as "the next character literally".
    assert _go_match(escaped, f"/data/{name}")
    decoys = [f"/data/{name}x", "/data/star", "/data/a1b", "/data/a", "/data/backslash",
              "/data/starXY"]
    assert not [d for d in decoys if d != f"/data/{name}" and _go_match(escaped, d)]


def test_escape_glob_escapes_each_special_character() -> None:
    assert commands.escape_glob("a*b?c[d]e\\f") == "a\\*b\\?c\\[d]e\\\\f"


def test_restore_include_is_escaped() -> None:
    argv = commands.restore("/repo", PW, snapshot="s", target="/t", include=["/x/*.dump"])
    assert argv[argv.index("--include") + 1] == "/x/\\*.dump"
    assert argv[-2:] == ["--", "s"]


def _go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match semantics for our purpose: translate to fnmatch with escapes."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out += "[" + pattern[i + 1] + "]" if pattern[i + 1] not in "[]" else (
                "[[]" if pattern[i + 1] == "[" else "]")
            i += 2
            continue
        out += c
        i += 1
    return fnmatch.fnmatchcase(name, out)
