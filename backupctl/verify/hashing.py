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


# Runs on the source host (python3 ≥ 3.6, standard library only). Input: a JSON list on
# stdin, one item per file: a path (UTF-8), {"raw": base64 of the path's bytes}, or
# {"lossy": path as restic lists it, "size", "mtime_ns"}: a name with U+FFFD for bytes that
# are not UTF-8, found by its bytes among the directory's entries whose listed form it is
# (several: the one with the snapshot's size and mtime). Paths are opened as bytes, whatever
# the host's locale. Output: one JSON object per item, {"i": index, "size", "mtime_ns",
# "sha256", "stable"} or {"i": index, "error"} (+ "ambiguous": true when several names on
# the host are listed alike), with "raw" (base64 of the bytes opened) for a lossy item;
# "stable" is false when the file changed while it was being read.
# `find(item)`: the paths on this host whose listed form is item["lossy"] (the one of
# item's size and mtime when several are), for the helpers here and on a recovery target.
FIND_SCRIPT = r"""
import base64, os, stat
def lossy(b):
    out, i = [], 0
    while i < len(b):
        c = b[i]
        w = 1 if c < 0x80 else 2 if 0xc2 <= c <= 0xdf else 3 if 0xe0 <= c <= 0xef \
            else 4 if 0xf0 <= c <= 0xf4 else 0
        if w:
            try:
                out.append(b[i:i + w].decode("utf-8"))
                i += w
                continue
            except UnicodeDecodeError:
                pass
        out.append("\ufffd")
        i += 1
    return "".join(out)
seen = {}
def find(item):
    parts = item["lossy"].split("/")
    found = [parts[0].encode("utf-8")]
    for part in parts[1:]:
        if "\ufffd" not in part:
            found = [f + b"/" + part.encode("utf-8") for f in found]
            continue
        nxt = []
        for f in found:
            if f not in seen:  # a directory's names, by listed form, read once
                if len(seen) > 256:
                    seen.clear()
                seen[f] = {}
                try:
                    for n in os.listdir(f or b"/"):
                        seen[f].setdefault(lossy(n), []).append(n)
                except OSError:
                    pass
            nxt += [f + b"/" + n for n in seen[f].get(part, ())]
        found = nxt[:64]
    if len(found) > 1:
        def same(p):
            try:
                st = os.lstat(p)
            except OSError:
                return False
            return stat.S_ISREG(st.st_mode) and st.st_size == item.get("size") \
                and st.st_mtime_ns == item.get("mtime_ns")
        found = [p for p in found if same(p)] or found
    return found
"""
REMOTE_SCRIPT = FIND_SCRIPT + r"""
import hashlib, json, sys
paths = json.loads(sys.stdin.buffer.read().decode("utf-8"))
buf = bytearray(1 << 20)
view = memoryview(buf)
out = sys.stdout
for i, item in enumerate(paths):
    rec = {"i": i}
    try:
        if isinstance(item, str):
            path = item.encode("utf-8")
        elif "raw" in item:
            path = base64.b64decode(item["raw"])
        else:
            found = find(item)
            if len(found) != 1:
                rec.update(ambiguous=len(found) > 1, error=(
                    "%d names on the host are listed as this one" % len(found)
                    if found else "No such file or directory"))
                raise LookupError
            path = found[0]
            rec["raw"] = base64.b64encode(path).decode("ascii")
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
    except LookupError:
        pass
    except OSError as exc:
        rec["error"] = exc.strerror or str(exc)
    out.write(json.dumps(rec) + "\n")
    if i % 64 == 0:
        out.flush()
out.flush()
"""
