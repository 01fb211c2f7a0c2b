"""docs/reliability.md is the fault matrix an auditor reads: every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAULTS = ROOT / "tests" / "integration" / "faults"
# F`file.py::name` is a file under tests/integration/faults/; `tests/…/file.py::name` a path.
REF = re.compile(r"(F?)`([^`\s]+\.py)::([A-Za-z_0-9]+)(?:\[[^\]]*\])?`")


def test_every_test_named_in_the_fault_matrix_exists() -> None:
    refs = REF.findall((ROOT / "docs" / "reliability.md").read_text())
    assert len(refs) >= 40, "the matrix lost its rows or their format changed"
    missing = []
    for in_faults, path, name in refs:
        file = FAULTS / path if in_faults else ROOT / path
        if not file.is_file() or not re.search(rf"^def {name}\b", file.read_text(), re.M):
            missing.append(f"{path}::{name}")
    assert missing == []
