"""Finding the orchestrator's PostgreSQL for the throwaway server: every installed major
version is a candidate (Debian's and PGDG's directories, `pg_config --bindir`), the newest
wins, and no version number is written in code."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupctl.databases import cluster
from backupctl.databases.cluster import ClusterError, find_pg_bin
from backupctl.execute.fake import FakeRunner


def _bindir(path: Path, *, tools: tuple[str, ...] = cluster._TOOLS) -> Path:
    path.mkdir(parents=True)
    for tool in tools:
        (path / tool).touch()
    return path


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(cluster, "PG_ROOTS", ((tmp_path / "debian", "*/bin"),
                                              (tmp_path / "usr", "pgsql-*/bin")))
    return tmp_path


def _versions(runner: FakeRunner, **by_dir: str) -> None:
    for name, version in by_dir.items():
        runner.on(f"{name}/pg_restore", "--version",
                  stdout=f"pg_restore (PostgreSQL) {version}\n".encode())


def test_the_newest_of_debian_pgdg_and_pg_config_directories_wins(roots: Path) -> None:
    debian = [_bindir(roots / "debian" / v / "bin") for v in ("13", "15")]
    pgdg = _bindir(roots / "usr" / "pgsql-16" / "bin")
    own = _bindir(roots / "opt" / "pg" / "bin")
    runner = FakeRunner()
    runner.on("pg_config", "--bindir", stdout=f"{own}\n".encode())
    _versions(runner, **{str(debian[0]): "13.20", str(debian[1]): "15.18", str(pgdg): "16.9",
                         str(own): "17.5 (Debian 17.5-1)"})

    found = find_pg_bin(runner)

    assert (found.path, found.version, found.major) == (own, "17.5", 17)
    assert {str(c.argv[0]) for c in runner.commands("--version")} == {
        f"{d}/pg_restore" for d in (*debian, pgdg, own)}


def test_a_directory_without_the_server_programs_is_no_candidate(roots: Path) -> None:
    _bindir(roots / "debian" / "17" / "bin", tools=("pg_restore",))  # client only
    full = _bindir(roots / "debian" / "15" / "bin")
    runner = FakeRunner()
    runner.on("pg_config", "--bindir", returncode=127)
    _versions(runner, **{str(full): "15.18"})

    assert find_pg_bin(runner).path == full


def test_pg_config_naming_a_known_directory_counts_it_once(roots: Path) -> None:
    debian = _bindir(roots / "debian" / "16" / "bin")
    runner = FakeRunner()
    runner.on("pg_config", "--bindir", stdout=f"{debian}/\n".encode())
    _versions(runner, **{str(debian): "16.9"})

    assert cluster.candidates(runner) == [debian]


def test_no_postgresql_names_every_place_looked(roots: Path) -> None:
    runner = FakeRunner()
    runner.on("pg_config", "--bindir", returncode=127)

    with pytest.raises(ClusterError) as raised:
        find_pg_bin(runner)

    assert "pgsql-*/bin" in str(raised.value) and "pg_config --bindir" in str(raised.value)


def test_an_explicit_directory_is_the_only_candidate(tmp_path: Path) -> None:
    runner = FakeRunner()
    _versions(runner, **{str(tmp_path): "15.18"})

    assert find_pg_bin(runner, tmp_path).path == tmp_path
    assert not runner.commands("pg_config")
