"""Fixtures of the restic version tests: both restic versions (tests/restic_versions.py), a
small PostgreSQL source database and a scratch_dir the restore user can reach."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import Postgres
from tests.integration.databases.conftest import JAPANESE, SourceDb, scratch
from tests.restic_versions import restic_014, restic_018

__all__ = ["restic_014", "restic_018", "scratch", "small_db"]


@pytest.fixture
def small_db(postgres: Postgres) -> Iterator[SourceDb]:
    """A fresh database with one table of Japanese text: what the matrix needs of a dump
    (the versions differ in how restic stores it, not in how much there is)."""
    name = f"small_{secrets.token_hex(4)}"
    admin = SourceDb(postgres, "postgres")
    admin.psql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")
    db = SourceDb(postgres, name)
    db.psql("CREATE TABLE 患者 (id int PRIMARY KEY, 名前 text NOT NULL, 診療科 text);"
            + "".join(f"INSERT INTO 患者 VALUES ({i}, '{n}', '{d}');" for i, n, d in JAPANESE))
    yield db
    with contextlib.suppress(subprocess.CalledProcessError):
        admin.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
