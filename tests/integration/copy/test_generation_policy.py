"""Our model of `restic forget` agrees with real restic on what each policy keeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backupctl.actions.generations import keep
from backupctl.restic.parse import parse_time
from tests.conftest import Workspace, restic

# Irregular history over ~5 months: several a day, gaps, a year boundary.
OFFSETS_H = [0, 1, 5, 26, 27, 50, 170, 172, 340, 500, 800, 1200, 1700, 2300, 2900, 3400]
POLICIES = [{"last": 3}, {"hourly": 4}, {"daily": 5}, {"weekly": 4},
            {"daily": 3, "weekly": 3, "monthly": 3}, {"last": 2, "monthly": 6, "yearly": 2}]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, restic_template: Path) -> Path:
    import shutil
    repo = tmp_path_factory.mktemp("policy") / "repo"
    shutil.copytree(restic_template, repo)
    src = repo.parent / "src"
    src.mkdir()
    (src / "f").write_text("x")
    start = datetime(2025, 11, 20, 1, 30, tzinfo=UTC)
    for hours in OFFSETS_H:
        moment = (start + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")
        restic(repo, "backup", "-q", "--host", "pol", "--time", moment, str(src))
    return repo


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: ",".join(f"{k}{v}" for k, v in
                                                                    p.items()))
def test_keep_matches_restic_forget(history: Path, policy: dict[str, int],
                                    workspace: Workspace) -> None:
    flags = [a for k, v in policy.items() for a in (f"--keep-{k}", str(v))]
    out = restic(history, "forget", "--dry-run", "--json", "--host", "pol", "--group-by",
                 "host", *flags).stdout
    groups = json.loads(out)
    kept_by_restic = sorted(parse_time(s["time"]) for g in groups for s in g["keep"] or [])
    everything = sorted(parse_time(s["time"]) for s in json.loads(
        restic(history, "snapshots", "--json").stdout))

    assert len(everything) == len(OFFSETS_H)
    assert sorted(keep(everything, policy)) == kept_by_restic
