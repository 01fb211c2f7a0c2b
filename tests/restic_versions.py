"""The restic versions every `make test` runs backupctl with: 0.14 (Debian 12) and 0.18
(Debian 13).

Each comes from the system when its `restic version` is the wanted one, else from Debian's
package registry: `apt-get update` + `apt-get download restic` with a sources list, state,
cache and empty dpkg status of their own under the test cache (the system's apt sources,
lists, pins, keys and packages are neither read nor changed; the archive key is Debian's
keyring, /usr/share/keyrings/debian-archive-keyring.gpg), then `dpkg-deb -x` of the
package: restic is one Go binary. The cache (~/.cache/backupctl-tests, or
$BACKUPCTL_TEST_CACHE) is outside the repository and reused by every later run; a lock
file lets parallel workers wait for the one that downloads.

Where a version cannot be had (no network, no apt, no keyring), the fixture says why: it
FAILS when CI=true, and skips with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("BACKUPCTL_TEST_CACHE")
             or Path.home() / ".cache" / "backupctl-tests")
MIRROR = os.environ.get("BACKUPCTL_DEBIAN_MIRROR", "http://deb.debian.org/debian")
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
APT_TIMEOUT = 600


@dataclass(frozen=True)
class Wanted:
    version: str  # "0.18": any 0.18.x
    suite: str  # the Debian release that ships it


V014 = Wanted("0.14", "bookworm")
V018 = Wanted("0.18", "trixie")


class Unavailable(Exception):
    """This restic could not be had here (the message says why)."""


def version_of(binary: str | Path) -> str | None:
    """`0.18.0` from `restic version`, or None."""
    try:
        done = subprocess.run([str(binary), "version"], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"restic (\d+\.\d+\.\d+)", done.stdout)
    return match.group(1) if done.returncode == 0 and match else None


def _is(binary: str | Path | None, wanted: Wanted) -> bool:
    found = version_of(binary) if binary is not None else None
    return found is not None and found.startswith(wanted.version + ".")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _apt(root: Path, *args: str, cwd: Path | None = None) -> None:
    """apt-get with everything of its own under `root`: the system's apt is left alone."""
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    options = {
        "Dir::State": root / "state", "Dir::State::status": root / "status",
        "Dir::Cache": root / "cache", "Dir::Etc::SourceList": root / "sources.list",
        "Dir::Etc::SourceParts": "/dev/null", "Dir::Etc::Preferences": "/dev/null",
        "Dir::Etc::PreferencesParts": "/dev/null", "Dir::Etc::TrustedParts": "/dev/null",
        "Dir::Etc::Trusted": "/dev/null", "APT::Architecture": arch,
        "APT::Architectures": arch, "Acquire::Languages": "none",
        "APT::Sandbox::User": getpass.getuser(), "Debug::NoLocking": "1"}
    argv = ["apt-get", "-q", *(f"-o{k}={v}" for k, v in options.items()), *args]
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                              timeout=APT_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"`apt-get {' '.join(args)}` took over {APT_TIMEOUT}s") from None
    if done.returncode != 0:
        raise Unavailable(f"`apt-get {' '.join(args)}` exited {done.returncode}: "
                          f"{(done.stderr or done.stdout).strip()[-800:]}")


def download(wanted: Wanted, cache: Path = CACHE) -> Path:
    """restic `wanted.version` from Debian `wanted.suite`'s package, unpacked in `cache`
    (downloaded once; later calls find it there)."""
    unpacked = cache / f"restic-{wanted.version}"
    binary = unpacked / "usr" / "bin" / "restic"
    with _locked(cache / f"restic-{wanted.version}.lock"):
        if _is(binary, wanted):
            return binary
        for tool in ("apt-get", "dpkg-deb", "dpkg"):
            if shutil.which(tool) is None:
                raise Unavailable(f"{tool} is not installed (Debian's apt is how the suite "
                                  "gets it)")
        if not KEYRING.is_file():
            raise Unavailable(f"{KEYRING} is missing: install debian-archive-keyring")
        root = cache / f"apt-{wanted.suite}"
        for sub in ("state/lists/partial", "cache/archives/partial", "debs"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "status").touch()
        (root / "sources.list").write_text(
            f"deb [signed-by={KEYRING}] {MIRROR} {wanted.suite} main\n")
        _apt(root, "update")
        for old in (root / "debs").glob("restic_*.deb"):
            old.unlink()
        _apt(root, "download", "restic", cwd=root / "debs")
        debs = sorted((root / "debs").glob("restic_*.deb"))
        if not debs:
            raise Unavailable(f"apt-get download restic left no package in {root / 'debs'}")
        deb = debs[-1]
        shutil.rmtree(unpacked, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True,
                       capture_output=True)
        if not _is(binary, wanted):
            raise Unavailable(f"{deb.name} from {wanted.suite} holds restic "
                              f"{version_of(binary)}, not {wanted.version}")
        return binary


def obtain(wanted: Wanted) -> Path:
    """The system's restic when it is `wanted`, else Debian's package of it."""
    system = shutil.which("restic")
    if system is not None and _is(system, wanted):
        return Path(system)
    return download(wanted)


def fixture_for(wanted: Wanted) -> Path:
    """`obtain`, or the test fails (CI=true) / skips (elsewhere) saying why."""
    try:
        return obtain(wanted)
    except (Unavailable, OSError, subprocess.CalledProcessError) as exc:
        reason = (f"restic {wanted.version} (Debian {wanted.suite}'s package) could not be "
                  f"had: {exc}")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def restic_014() -> Path:
    """restic 0.14.x: Debian 12's (the system's here)."""
    return fixture_for(V014)


@pytest.fixture(scope="session")
def restic_018() -> Path:
    """restic 0.18.x: Debian 13's package, through apt into the test cache."""
    return fixture_for(V018)
