"""databases/__init__.py: the package's names load their modules when first used (issue 25)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import backupctl.databases as databases
from backupctl.databases import cluster, kinds, model, prove
from backupctl.databases import dump as dump_module


def test_importing_the_package_imports_none_of_its_modules() -> None:
    code = ("import sys, backupctl.databases; "
            "print(' '.join(m for m in sys.modules if m.startswith('backupctl.databases.')))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True, timeout=120).stdout.split()
    assert loaded == []


def test_each_name_is_its_modules_object() -> None:
    assert databases.cleanup_leftovers is cluster.cleanup_leftovers
    assert databases.leftovers is cluster.leftovers
    assert databases.dump_database is dump_module.dump_database
    assert databases.KINDS is kinds.KINDS and databases.Kind is kinds.Kind
    assert databases.DumpResult is model.DumpResult
    assert databases.DumpManifest is model.DumpManifest
    assert databases.prove_full is prove.prove_full
    assert databases.prove_quick is prove.prove_quick
    assert databases.account.__name__ == "backupctl.databases.account"
    assert sorted(databases.__all__) == sorted(databases._WHERE)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="nosuch"):
        databases.nosuch  # noqa: B018
