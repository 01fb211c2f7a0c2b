"""The stream helper's choice of PostgreSQL client programs on the source host, when the
job names no pg_bin: every installed client is found, pg_dump matches the server's major
version where it can (its dump restores on a PostgreSQL of that version), else the oldest
newer one; no version number is written in code."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

from backupctl.databases import streamer


def _client(bindir: Path, version: str) -> Path:
    bindir.mkdir(parents=True)
    (bindir / "pg_dump").write_text(f"#!/bin/sh\necho 'pg_dump (PostgreSQL) {version}'\n")
    (bindir / "psql").write_text("#!/bin/sh\n")
    for name in ("pg_dump", "psql"):
        (bindir / name).chmod(0o755)
    return bindir


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Clients 13 and 15 the Debian way, 16 the PGDG way, 17 found by pg_config only."""
    dirs = {"13": _client(tmp_path / "lib" / "13" / "bin", "13.20"),
            "15": _client(tmp_path / "lib" / "15" / "bin", "15.14 (Debian 15.14-0+deb12u1)"),
            "16": _client(tmp_path / "pgsql-16" / "bin", "16.9"),
            "17": _client(tmp_path / "opt" / "bin", "17.5")}
    config = tmp_path / "path" / "pg_config"
    config.parent.mkdir()
    config.write_text(f"#!/bin/sh\necho {dirs['17']}\n")
    config.chmod(0o755)
    monkeypatch.setenv("PATH", f"{config.parent}:{os.environ['PATH']}")
    patterns = {"/usr/lib/postgresql/*/bin": [str(dirs["15"]), str(dirs["13"])],
                "/usr/pgsql-*/bin": [str(dirs["16"])]}
    monkeypatch.setattr(glob, "glob", lambda pattern: patterns.get(pattern, []))
    return dirs


def test_every_installed_client_is_found_newest_first(installed: dict[str, Path]) -> None:
    found = streamer.installed_pg_bins()

    assert found == [((17, 5), str(installed["17"])), ((16, 9), str(installed["16"])),
                     ((15, 14), str(installed["15"])), ((13, 20), str(installed["13"]))]


@pytest.mark.parametrize(("server", "major"), [(150014, "15"), (130020, "13"),
                                               (140011, "15"), (170005, "17")])
def test_pg_dump_matches_the_servers_major_version_else_the_oldest_newer(
        installed: dict[str, Path], server: int, major: str) -> None:
    assert streamer.pg_dump_bin(streamer.installed_pg_bins(), server) == str(installed[major])


def test_a_server_newer_than_every_client_leaves_pg_dump_to_path() -> None:
    assert streamer.pg_dump_bin([((15, 14), "/opt/pg/bin")], 170002) is None


def test_a_directory_without_psql_or_a_working_pg_dump_is_left_out(
        installed: dict[str, Path]) -> None:
    (installed["13"] / "psql").unlink()
    (installed["16"] / "pg_dump").write_text("#!/bin/sh\nexit 1\n")

    found = [bindir for _, bindir in streamer.installed_pg_bins()]

    assert found == [str(installed["17"]), str(installed["15"])]
