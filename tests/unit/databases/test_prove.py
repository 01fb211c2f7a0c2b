"""How a read of the dump from the repository is judged: bad data, or not proven (prove.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupctl.databases.cluster import PgBin
from backupctl.databases.kinds.postgresql import version_gap
from backupctl.databases.model import DumpManifest
from backupctl.databases.reading import Draft, Read, judge_read
from backupctl.execute import Result

MANIFEST = DumpManifest(job="emr-db", database="emr", kind="postgresql", snapshot_id="1f753783",
                        path="/emr-db/emr.pgdump", sha256="ab" * 32, size=100,
                        tables={"public.a": 1}, server_version=150018, dump_version="15.18")


def judged(sha256: str, size: int, *, returncode: int = 0, stderr: str = "",
           timed_out: bool = False) -> Draft:
    draft = Draft(MANIFEST, "quick", MANIFEST.snapshot_id)
    judge_read(MANIFEST, draft, Read(sha256, size, Result("restic dump", returncode,
                                                          stderr=stderr, timed_out=timed_out)))
    return draft


def test_the_recorded_bytes_match() -> None:
    draft = judged("ab" * 32, 100)
    assert draft.sha256_match is True and draft.not_proven is None


@pytest.mark.parametrize(("sha256", "size"), [("cd" * 32, 100), ("ab" * 32, 99)])
def test_other_bytes_are_bad_data(sha256: str, size: int) -> None:
    done = judged(sha256, size).done()
    assert done.sha256_match is False and done.bad_data


@pytest.mark.parametrize("stderr", [
    "cannot dump file: decrypting blob 39 failed: ciphertext verification failed",
    'cannot dump file: path "/emr-db/emr.pgdump" not found in snapshot'])
def test_damaged_data_read_by_restic_is_bad_data(stderr: str) -> None:
    done = judged("", 0, returncode=2, stderr=stderr).done()
    assert done.bad_data and done.read_error is not None and done.not_proven is None


def test_a_dump_snapshot_gone_from_the_repository_is_bad_data() -> None:
    done = judged("", 0, returncode=1, stderr='invalid id "1f753783": no matching ID found '
                  'for prefix "1f753783"').done()
    assert done.bad_data and done.not_proven is None
    assert "not in the repository" in (done.read_error or "")


@pytest.mark.parametrize(("returncode", "stderr", "timed_out", "says"), [
    (1, "Fatal: wrong password or no key found", False, "wrong password"),
    (1, "Fatal: unable to open config file: Is there a repository at the following location?",
     False, "repository does not exist"),
    (-9, "cannot dump file: ciphertext verification failed", True, "fatal error"),
])
def test_a_read_that_could_not_happen_is_not_proven(returncode: int, stderr: str,
                                                   timed_out: bool, says: str) -> None:
    done = judged("", 0, returncode=returncode, stderr=stderr, timed_out=timed_out).done()
    assert not done.bad_data and done.not_proven is not None and says in done.not_proven


@pytest.mark.parametrize(("server", "dump", "local", "gap"), [
    (150018, "15.18", "15.18", False), (140010, "15.18", "15.2", False),
    (160002, "16.2", "15.18", True), (150018, "17.0", "16.1", True), (None, None, "15.1", False)])
def test_version_gap(server: int | None, dump: str | None, local: str, gap: bool) -> None:
    import dataclasses

    manifest = dataclasses.replace(MANIFEST, server_version=server, dump_version=dump)
    found = version_gap(manifest, PgBin(Path("/usr/lib/postgresql/x/bin"), local))
    assert (found is not None) is gap
    if found:
        assert f"orchestrator's newest PostgreSQL is {local}" in found
