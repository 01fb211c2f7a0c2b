"""SHA-256 with constant memory: local files (restored data) and the source-host helper.

Local hashing reads each file once through one preallocated buffer; several files are hashed
in parallel threads (hashlib releases the GIL on large buffers, so both cores work).
`REMOTE_SCRIPT` runs on the source host as `python3 -I -c REMOTE_SCRIPT`: the file list
arrives as JSON on stdin (paths are data, never part of a command line) and one JSON line per
file streams back, so a whole manifest costs one remote process.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20  # 1 MiB: large enough to release the GIL, small enough to stay flat
WORKERS = 2


@dataclass(frozen=True)
class Digest:
    """The outcome of hashing one file: size and hex digest, or why it could not be read."""

    size: int | None = None
    sha256: str | None = None
    error: str | None = None
    missing: bool = False


_LOCAL = threading.local()


def _buffer(size: int) -> memoryview:
    """One reusable read buffer per thread (no 1 MiB allocation per file)."""
    view: memoryview | None = getattr(_LOCAL, "view", None)
    if view is None or len(view) != size:
        view = memoryview(bytearray(size))
        _LOCAL.view = view
    return view


def sha256_file(path: Path, *, chunk: int = CHUNK) -> Digest:
    """Hash one file without following a final symlink; memory stays at one chunk."""
    view = _buffer(chunk)
    digest = hashlib.sha256()
    size = 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return Digest(error="missing", missing=True)
    except OSError as exc:
        return Digest(error=exc.strerror or str(exc))
    with open(fd, "rb", buffering=0) as stream:
        while True:
            count = stream.readinto(view)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return Digest(size=size, sha256=digest.hexdigest())


def sha256_many(paths: Iterable[Path], *, workers: int = WORKERS) -> Iterator[Digest]:
    """Digests in the order of `paths`, hashed `workers` files at a time."""
    if workers <= 1:
        yield from (sha256_file(p) for p in paths)
        return
    window: deque[Future[Digest]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sha256") as pool:
        for path in paths:  # a bounded window: memory does not grow with the file count
            window.append(pool.submit(sha256_file, path))
            if len(window) >= 4 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


# Runs on the source host (python3 ≥ 3.6, standard library only). Input: a JSON list of
# paths on stdin. Output: one JSON object per path, {"i": index, "size", "mtime_ns",
# "sha256", "stable"} or {"i": index, "error"}; "stable" is false when the file changed while
# it was being read.
REMOTE_SCRIPT = r"""
import hashlib, json, os, sys
paths = json.loads(sys.stdin.buffer.read().decode("utf-8"))
buf = bytearray(1 << 20)
view = memoryview(buf)
out = sys.stdout
for i, path in enumerate(paths):
    rec = {"i": i}
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb", buffering=0) as f:
            before = os.fstat(f.fileno())
            h = hashlib.sha256()
            n = 0
            while True:
                k = f.readinto(view)
                if not k:
                    break
                h.update(view[:k])
                n += k
            after = os.fstat(f.fileno())
        rec.update(size=before.st_size, mtime_ns=before.st_mtime_ns, sha256=h.hexdigest(),
                   stable=(n == before.st_size == after.st_size
                           and before.st_mtime_ns == after.st_mtime_ns))
    except OSError as exc:
        rec["error"] = exc.strerror or str(exc)
    out.write(json.dumps(rec) + "\n")
    if i % 64 == 0:
        out.flush()
out.flush()
"""
