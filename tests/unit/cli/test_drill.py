"""drill --to: the recovery's request as the command line gives it (--from a copy too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupctl.cli.drill import _onto
from backupctl.databases.onto import DEFAULT_DSN
from backupctl.errors import UsageError


def onto(**kw: object) -> object:
    args: dict[str, object] = {"job": "emr", "target": None, "source": "primary",
                               "snapshot": None, "identity": None, "databases": False,
                               "target_dsn": DEFAULT_DSN, **kw}
    return _onto("ssh://root@192.0.2.20/srv/restore", **args)  # type: ignore[arg-type]


def test_drill_onto_a_spare_server_reads_the_copy_given_with_from() -> None:
    request = onto(source="cloud-worm")
    assert getattr(request, "source", None) == "cloud-worm"
    assert getattr(onto(), "source", None) == "primary"


def test_drill_onto_a_spare_server_does_not_go_with_target() -> None:
    with pytest.raises(UsageError, match="--target"):
        onto(target=Path("/srv/x"))
