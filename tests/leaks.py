"""A password-leak watcher for tests (SPEC §7): samples `/proc/*/cmdline` and
`/proc/*/environ` of every process while it runs, and at the end scans recorded outputs and
files written meanwhile, for one secret or several (`also`: a repository URL's password
beside the repository password). Used by every fault test (autouse), the CLI secrets test
and the database dump tests (tests/integration/databases/test_secrets.py)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LeakWatch:
    """Samples every process's argv and environment; scans outputs and files at the end."""

    needle: bytes
    also: tuple[bytes, ...] = ()  # more secrets watched the same way (a URL's password, …)
    interval: float = 0.01  # seconds between sweeps of /proc
    started: float = field(default_factory=time.time)
    hits: list[str] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (what, text) to scan
    roots: list[Path] = field(default_factory=list)  # directories to scan for files
    allowed: set[Path] = field(default_factory=set)  # the password files themselves
    sweeps: int = 0
    restic_argvs: list[list[str]] = field(default_factory=list)  # one per restic process seen
    restic_lineage: list[tuple[int, ...]] = field(default_factory=list)  # its ancestors' pids
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def needles(self) -> tuple[bytes, ...]:
        return (self.needle, *self.also)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._sample, daemon=True, name="leak-watch")
        self._thread.start()

    def _sample(self) -> None:
        me = str(os.getpid())
        seen: set[str] = set()
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == me:
                    continue
                for name in ("cmdline", "environ"):
                    data = _read_proc(f"/proc/{pid}/{name}")
                    if data is None:
                        continue
                    if any(needle in data for needle in self.needles):
                        self.hits.append(f"/proc/{pid}/{name}: {data[:300]!r}")
                    if name == "cmdline" and _is_restic(data) and pid not in seen:
                        seen.add(pid)
                        self.restic_argvs.append(
                            data.decode(errors="replace").rstrip("\0").split("\0"))
                        self.restic_lineage.append(_ancestors(int(pid)))
            self.sweeps += 1
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def restic_argvs_under(self, *pids: int) -> list[list[str]]:
        """The restic processes started (at any depth) by one of `pids`: a test's own, where
        other tests run restic beside it."""
        return [argv for argv, lineage in zip(self.restic_argvs, self.restic_lineage,
                                              strict=True) if set(pids) & set(lineage)]

    def text(self, what: str, text: str) -> None:
        self.texts.append((what, text))

    def scan(self, extra_roots: list[Path]) -> list[str]:
        """Every leak found: sampled processes, recorded outputs, files written meanwhile."""
        found = list(self.hits)
        for number, needle in enumerate(self.needles):
            secret, which = needle.decode(), f"secret {number}" if number else "the password"
            found += [f"{what} contains {which}" for what, text in self.texts
                      if secret in text]
            for root in [*self.roots, *extra_roots]:
                found += [f"file {p} contains {which}" for p in
                          _files_containing(needle, root, since=self.started - 2,
                                            skip=self.allowed)]
        return found


def _read_proc(path: str) -> bytes | None:
    """The whole file, None when the process is gone or hidden. Plain os.open/os.read: a
    sweep reads two files of every process a hundred times a second, and this costs the
    sampling thread less than half the CPU of Path.read_bytes (the test it watches and the
    other workers share the cores)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _ancestors(pid: int) -> tuple[int, ...]:
    """The parent, grandparent, … of `pid` (as far as /proc still shows them)."""
    found: list[int] = []
    while pid > 1 and len(found) < 64:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and ')'
        found.append(pid)
    return tuple(found)


def _is_restic(cmdline: bytes) -> bool:
    """restic started by name or by path (`/usr/bin/restic`, a job's `restic` setting)."""
    return cmdline.split(b"\0", 1)[0].rsplit(b"/", 1)[-1] == b"restic"


def _files_containing(needle: bytes, root: Path, *, since: float, skip: set[Path]) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirs, files in os.walk(root, onerror=lambda _e: None):
        dirs[:] = [d for d in dirs if not (Path(dirpath) / d).is_symlink()]
        for name in files:
            path = Path(dirpath) / name
            try:
                st = path.lstat()
                if (not path.is_file() or path.is_symlink() or st.st_mtime < since
                        or path in skip or st.st_size > 64 * 1024 * 1024):
                    continue
                if needle in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found
