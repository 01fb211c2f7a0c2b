"""Names that are not UTF-8: restic's listed form, the bytes kept, the form people read."""

from __future__ import annotations

import os

import pytest

from backupctl.verify import names

CP932 = os.fsdecode("カルテ.txt".encode("cp932"))


@pytest.mark.parametrize(("raw", "listed"), [
    ("カルテ.txt".encode("cp932"), "\ufffdJ\ufffd\ufffd\ufffde.txt"),  # seen from restic 0.14
    (b"\xe3\x81A", "\ufffd\ufffdA"),  # a cut sequence: one U+FFFD per byte, as Go does
    (b"\xed\xa0\x80", "\ufffd" * 3),  # a surrogate encoded is not UTF-8
    (b"\xc0\xaf", "\ufffd\ufffd"),  # nor an overlong form
    ("患者".encode() + b"\xff", "患者\ufffd"),
    ("\ufffd".encode(), "\ufffd"),  # a real U+FFFD stays one
])
def test_lossy_is_restics_listed_form(raw: bytes, listed: str) -> None:
    assert names.lossy(raw) == listed


def test_bytes_round_trip_and_are_shown_escaped() -> None:
    assert names.to_bytes(CP932) == "カルテ.txt".encode("cp932")
    assert names.from_bytes(names.to_bytes(CP932)) == CP932
    assert not names.is_utf8(CP932) and names.is_utf8("カルテ.txt")
    assert names.shown(CP932) == "\\x83J\\x83\\x8b\\x83e.txt"
    assert names.shown("カルテ.txt") == "カルテ.txt"
    names.shown(CP932).encode("utf-8")  # valid UTF-8: JSON, PDF and logs take it
    assert names.listed(CP932) == "\ufffdJ\ufffd\ufffd\ufffde.txt"


def test_control_characters_are_shown_escaped_so_a_name_cannot_forge_a_line() -> None:
    hostile = names.from_bytes(b"\x83\r\x1b[2K\x1b[1Gverify: OK\nnext" + "\u202e".encode())
    assert names.shown(hostile) == "\\x83\\x0d\\x1b[2K\\x1b[1Gverify: OK\\x0anext\\u202e"
    assert names.shown(hostile).isprintable()
    assert names.shown("スキャン\u3000001.pdf") == "スキャン\u3000001.pdf"  # a full-width space
    assert names.message("Fatal: x\n\x1b[31mline two\n") == "Fatal: x\n\\x1b[31mline two\n"


def test_the_manifest_keeps_the_bytes_as_base64_and_old_rows_read_as_they_were() -> None:
    raw = names.encode_raw(CP932)
    assert raw is not None and raw.isascii()
    assert names.decode_raw(names.listed(CP932), raw) == CP932
    assert names.encode_raw("カルテ.txt") is None
    assert names.decode_raw("/srv/カルテ.txt", None) == "/srv/カルテ.txt"
