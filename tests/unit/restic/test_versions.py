"""restic versions: 0.14 and newer run, an older or missing restic is refused before
anything runs, naming what was found and what to do."""

from __future__ import annotations

import pytest

from backupctl.errors import ResticError, UsageError
from backupctl.execute import Programs
from backupctl.execute.fake import FakeRunner
from backupctl.restic import versions


@pytest.mark.parametrize(("text", "found"), [("0.14.0", (0, 14, 0)), ("0.18.1", (0, 18, 1)),
                                             ("0.9", (0, 9)), ("unknown", None), ("", None)])
def test_numbers(text: str, found: tuple[int, ...] | None) -> None:
    assert versions.numbers(text) == found


@pytest.mark.parametrize("version", ["0.14.0", "0.16.4", "0.17.3", "0.18.0", "1.0.0"])
def test_supported_versions_pass(version: str) -> None:
    runner = FakeRunner(host="backup@emr:22")
    runner.on("restic", "version", stdout=f"restic {version} compiled with go1.24\n".encode())

    assert versions.require(runner, job="emr-db") == version


def test_an_older_restic_is_refused_naming_it_and_the_way_out() -> None:
    runner = Programs(FakeRunner(host="backup@emr:22"), {"restic": "/opt/restic"})
    runner.runner.on("/opt/restic", "version",  # type: ignore[attr-defined]
                     stdout=b"restic 0.12.1 compiled with go1.18\n")

    with pytest.raises(ResticError) as raised:
        versions.require(runner, job="emr-db")

    message = str(raised.value)
    assert "restic 0.12.1 on backup@emr:22 (/opt/restic) is too old" in message
    assert "0.14 or newer" in message and "host.restic" in message


def test_a_host_without_restic_is_refused() -> None:
    runner = FakeRunner(host="backup@emr:22")
    runner.on("restic", "version", returncode=127, stderr="sh: restic: not found")

    with pytest.raises(ResticError, match="cannot run `restic version` on backup@emr:22"):
        versions.require(runner, job="emr-db")


def test_refuse_old_lets_an_unknown_version_pass() -> None:
    versions.refuse_old("unknown", job="j", where="the orchestrator", binary="restic")
    with pytest.raises(ResticError, match=r"restic 0\.13\.1 on backup@emr:22"):
        versions.refuse_old("0.13.1", job="j", where="backup@emr:22", binary="restic")
    with pytest.raises(UsageError, match=r"restic 0\.13\.1 on the orchestrator"):
        versions.refuse_old("0.13.1", job="j", where="the orchestrator", binary="restic",
                            orchestrator=True)
