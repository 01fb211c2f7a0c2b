"""File names that are not valid UTF-8 (Shift_JIS/cp932 names from Windows shares, …).

restic keeps a name's bytes in the repository and restores them, but its JSON (`ls`, `find`,
0.14 to 0.18) shows every byte that is not part of valid UTF-8 as one U+FFFD, as Go's
encoder does: that *listed* form (`lossy`) is the file's key in listings, manifests and
coverage, never a name that can be opened. The name itself travels inside backupctl as a
`str` with surrogate escapes (`os.fsdecode`'s form, lossless: `to_bytes` gives the bytes
back), is kept in the manifest as base64 (`encode_raw`/`decode_raw`: the database and JSON
take only valid UTF-8) and is shown to people, in records and reports as `shown`: the bytes
that are not UTF-8 as `\\x83` escapes (valid UTF-8, safe in JSON, PDF and logs).
"""

from __future__ import annotations

import base64
import binascii

from backupctl.fmt import one_line

REPLACEMENT = "\ufffd"


def to_bytes(name: str) -> bytes:
    """The bytes of a name (surrogate escapes back to the bytes they stand for)."""
    return name.encode("utf-8", "surrogateescape")


def from_bytes(raw: bytes) -> str:
    """A name's bytes as a str, losslessly (bytes that are not UTF-8 as surrogate escapes)."""
    return raw.decode("utf-8", "surrogateescape")


def is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def lossy(raw: bytes) -> str:
    """How restic's JSON shows these bytes: each byte that does not start a valid UTF-8
    sequence is one U+FFFD (Go's `utf8.DecodeRune` → `RuneError`, width 1)."""
    out: list[str] = []
    i, end = 0, len(raw)
    while i < end:
        lead = raw[i]
        width = (1 if lead < 0x80 else 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF
                 else 4 if 0xF0 <= lead <= 0xF4 else 0)
        if width:
            try:
                out.append(raw[i:i + width].decode("utf-8"))
            except UnicodeDecodeError:
                pass
            else:
                i += width
                continue
        out.append(REPLACEMENT)
        i += 1
    return "".join(out)


def listed(name: str) -> str:
    """The form restic lists a name in (a name that is UTF-8 is its own listed form)."""
    return name if is_utf8(name) else lossy(to_bytes(name))


def shown(name: str) -> str:
    """What people read: bytes that are not UTF-8 as `\\x83` escapes (always valid UTF-8),
    and control and format characters as `\\x0a`/`\\u202e` too: a hostile name must not
    start a line of its own, move the cursor or recolour a terminal over a BAD DATA line."""
    return one_line(to_bytes(name).decode("utf-8", "backslashreplace"))


def message(text: str) -> str:
    """A command's output in an error message: `shown`, but its lines kept as lines."""
    return "\n".join(shown(line) for line in text.split("\n"))


def encode_raw(name: str) -> str | None:
    """The manifest's `raw_path`: base64 of the bytes of a name that is not UTF-8, else None."""
    return None if is_utf8(name) else base64.b64encode(to_bytes(name)).decode("ascii")


def decode_raw(path: str, raw: str | None) -> str:
    """The name a manifest row stands for: its `raw_path` when set, else its `path`."""
    if not raw:
        return path
    try:
        return from_bytes(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError):
        return path
