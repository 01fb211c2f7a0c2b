"""databases/kinds: one module per kind of the job file's contract, each with every name the
`Kind` protocol asks for, chosen from one table."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import get_args, get_type_hints

import pytest

from backupctl.config.schema import Database
from backupctl.databases import streamer_modes
from backupctl.databases.kinds import KINDS, Kind
from backupctl.databases.model import DumpManifest
from backupctl.databases.prove import prove_full, prove_quick
from backupctl.execute import Secret
from backupctl.execute.fake import FakeRunner


def test_every_kind_a_job_file_may_name_has_a_module() -> None:
    assert set(get_args(Database.model_fields["kind"].annotation)) == set(KINDS)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_module_provides_what_a_kind_must(name: str) -> None:
    kind = KINDS[name]
    for member, hint in get_type_hints(Kind).items():
        assert isinstance(getattr(kind, member), hint), member
    for function in ("dump_plan", "quick", "full", "restore_commands"):
        ours = inspect.signature(getattr(Kind, function))
        theirs = inspect.signature(getattr(kind, function))
        assert list(theirs.parameters) == list(ours.parameters)[1:]  # without self
    assert kind.HELPER_MODE in streamer_modes.MODES


def test_each_kind_has_its_own_suffix() -> None:
    suffixes = [kind.SUFFIX for kind in KINDS.values()]
    assert len(set(suffixes)) == len(suffixes)


@pytest.mark.parametrize("prove", ["quick", "full"])
def test_a_dump_of_a_kind_this_version_does_not_know_is_not_proven(prove: str,
                                                                  tmp_path: Path) -> None:
    manifest = DumpManifest(job="crm", database="crm", kind="mariadb", snapshot_id="1f753783",
                            path="/crm.crm.mariadb", sha256="ab" * 32, size=10, tables={"a": 1})
    runner = FakeRunner(host="local")
    password = Secret("pw")
    found = (prove_quick(runner, manifest, repo_url="/srv/repo", password=password, timeout=60)
             if prove == "quick" else
             prove_full(runner, manifest, checks=[], repo_url="/srv/repo", password=password,
                        scratch_dir=tmp_path, timeout=60))

    assert found.result == "not_proven" and runner.calls == []
    assert found.unproven() == ["database crm: this backupctl knows no database kind "
                                "'mariadb'"]
