"""The head pin: the chain's head as this orchestrator last wrote it, kept beside the key.

After every record it appends (a run, a recovered run, a notice), an orchestrator with an
evidence key writes `evidence_key` + `.head` (0600, atomic): the head's seq and hash and the
seq of the chain's first signed record, signed with the evidence key. The database's writer
can reach neither the file nor the key, so `evidence verify --db` compares the database
with it on every run, without any option:
- the pinned seq must still hold the pinned hash (the chain may have grown since: other
  orchestrators, or this one after the pin): else the newest records were deleted, or
  deleted and replaced;
- every record from the first signed seq on must be signed (chain.check, rules.py), and no
  record before it may be: else signatures were stripped or records downgraded;
- a pin whose signature does not verify with the evidence key was altered.
The pin is signed like a record: Ed25519 over the hex SHA-256 of its RFC 8785 form without
`signature`, so the inspector's script checks it with jq, sha256sum and openssl.

A pin never moves backwards and is never replaced by one that contradicts it: when the
database no longer holds the pinned record, the old pin is kept (and the problem logged),
so a truncation stays visible after later runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import rfc8785

from backupctl.evidence.model import UNPROVEN, Entry, Problem
from backupctl.files import write_atomic
from backupctl.signing import PublicKey, Signer
from backupctl.state import queries
from backupctl.state.db import Store

log = logging.getLogger(__name__)
FORMAT = "backupctl-evidence-head/1"
SUFFIX = ".head"


def path_for(key: Path) -> Path:
    """Where the pin of the evidence key at `key` lives."""
    return key.with_name(key.name + SUFFIX)


@dataclass(frozen=True)
class Pin:
    seq: int
    hash: str
    first_signed_seq: int
    key_fingerprint: str
    orchestrator: str
    written_at: str
    signature: str = ""

    def body(self) -> dict[str, Any]:
        """What is signed: everything but the signature, with the format."""
        data = {k: v for k, v in asdict(self).items() if k != "signature"}
        return {"format": FORMAT, **data}

    def digest(self) -> str:
        return hashlib.sha256(rfc8785.dumps(self.body())).hexdigest()

    def verifies(self, key: PublicKey) -> bool:
        return key.fingerprint == self.key_fingerprint and key.verify(self.digest(),
                                                                      self.signature)

    def text(self) -> bytes:
        return rfc8785.dumps({**self.body(), "signature": self.signature}) + b"\n"

    def describe(self) -> str:
        return (f"head pin (seq {self.seq}, hash {self.hash[:16]}…, first signed seq "
                f"{self.first_signed_seq}, written {self.written_at} by {self.orchestrator})")


class PinError(ValueError):
    """A pin file that is not a pin (altered or damaged)."""


def parse(data: bytes) -> Pin:
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise PinError(f"not a {FORMAT} file")
        pin = Pin(seq=int(raw["seq"]), hash=str(raw["hash"]),
                  first_signed_seq=int(raw["first_signed_seq"]),
                  key_fingerprint=str(raw["key_fingerprint"]),
                  orchestrator=str(raw["orchestrator"]), written_at=str(raw["written_at"]),
                  signature=str(raw["signature"]))
    except PinError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise PinError(f"malformed: {exc}") from None
    if set(raw) != {"format", *asdict(pin)}:
        raise PinError(f"unexpected fields {sorted(set(raw) - {'format', *asdict(pin)})}")
    return pin


def read(path: Path) -> Pin | None:
    """The pin at `path`; None when there is none. PinError when it is not a pin; OSError
    when it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return parse(data)


@contextlib.contextmanager
def _locked(signer: Signer) -> Iterator[None]:
    """One writer at a time (threads and processes of this orchestrator): an flock on the
    private key, which is never replaced (the pin itself is, by rename)."""
    assert signer.path is not None
    fd = os.open(signer.path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def advance(store: Store, signer: Signer | None, entry: Entry) -> None:
    """After `entry` was committed: move the pin to it. Never raises (the record is already
    in the chain); a pin that cannot be written or must be kept is logged as an error."""
    if signer is None or signer.path is None:
        return
    try:
        move(store, signer, entry)
    except (OSError, PinError) as exc:
        log.error("evidence head pin %s not written: %s; `backupctl evidence verify --db` "
                  "will say what it finds", path_for(signer.path), exc)
    except Exception:  # the run is recorded: nothing here may turn it into a failure
        log.exception("evidence head pin %s not written", path_for(signer.path))


def move(store: Store, signer: Signer, entry: Entry) -> Pin | None:
    """Pin `entry` (committed, signed by `signer`); None when the old pin is kept."""
    assert signer.path is not None
    path = path_for(signer.path)
    with _locked(signer):
        old = read(path)
        first = _keep_or_first(store, signer, old, entry, path)
        if first is None:
            return None
        new = Pin(seq=entry.seq, hash=entry.hash, first_signed_seq=first,
                  key_fingerprint=signer.public.fingerprint,
                  orchestrator=store.orchestrator, written_at=store.now())
        new = replace(new, signature=signer.sign(new.digest()))
        write_atomic(path, new.text(), mode=0o600)
        return new


def _keep_or_first(store: Store, signer: Signer, old: Pin | None, entry: Entry,
                   path: Path) -> int | None:
    """The first signed seq for the new pin, or None to keep the old pin as it is."""
    if old is None:
        return store.query(queries.first_signed_seq) or entry.seq
    if not old.verifies(signer.public):
        log.error("evidence head pin %s does not verify with the evidence key %s: kept for "
                  "`backupctl evidence verify --db` to report", path, signer.public.fingerprint)
        return None
    if (old.seq, old.hash) == (entry.seq, entry.hash):
        return None
    if store.query(queries.evidence_hash_at, old.seq) != old.hash:
        log.error("the evidence chain no longer holds the record of the %s (records were "
                  "deleted or rewritten): the pin is kept; run `backupctl evidence verify "
                  "--db`", old.describe())
        return None
    if old.seq > entry.seq:
        return None  # another run of this orchestrator pinned a newer record already
    return old.first_signed_seq


def trust_problem(found: Pin, key: PublicKey | None, *, path: Path) -> Problem | None:
    """Why the pin itself cannot be believed, if it cannot."""
    if key is None:
        return Problem(None, None, UNPROVEN, (
            f"the head pin {path} cannot be checked: this orchestrator's public key "
            "(evidence_key + .pub) is missing"))
    if not found.verifies(key):
        return Problem(None, None, "pin", (
            f"the head pin {path} does not verify with the evidence key {key.fingerprint}: "
            "it was altered or replaced"))
    return None


def compare(entries: Sequence[Entry], pin: Pin, *, whole: bool = True) -> list[Problem]:
    """The database's chain (`whole`) or a slice of it against a trusted pin (see the module
    doc); the pin's first signed seq is also handed to chain.check, which names each
    stripped record. A slice is only compared where it holds the pinned seq."""
    problems = []
    if (head := _head_problem(entries, pin, whole=whole)) is not None:
        problems.append(head)
    early = next((e for e in entries if e.seq < pin.first_signed_seq
                  and e.record.get("signature")), None)
    if early is not None:
        problems.append(Problem(early.seq, early.id, "pin", (
            f"record {early.name()} is signed, but the {pin.describe()} says the first signed "
            f"record is seq {pin.first_signed_seq}: the chain was rewritten")))
    return problems


def _head_problem(entries: Sequence[Entry], pin: Pin, *, whole: bool) -> Problem | None:
    """Does the chain still hold the pinned record at its seq?"""
    entry = next((e for e in entries if e.seq == pin.seq), None)
    last = entries[-1].seq if entries else 0
    if entry is None and not whole:
        return None  # the slice does not reach the pinned seq
    if entry is None and last < pin.seq:
        return Problem(pin.seq, None, "deleted", (
            f"the database's chain ends at seq {last}, but the {pin.describe()} says seq "
            f"{pin.seq} existed: the newest records (seq {last + 1}–{pin.seq}) were deleted"))
    if entry is None:
        return Problem(pin.seq, None, "deleted", (
            f"record seq {pin.seq} of the {pin.describe()} is missing: it was deleted"))
    if entry.hash != pin.hash:
        return Problem(entry.seq, entry.id, "deleted", (
            f"record {entry.name()} is not the record of the {pin.describe()} (hash "
            f"{entry.hash[:16]}…): records were deleted and others written in their place, "
            "or the chain was rewritten"))
    return None


def missing_problem(path: Path, own: PublicKey, signed: int) -> Problem:
    """No pin although records signed with this orchestrator's key exist."""
    return Problem(None, None, UNPROVEN, (
        f"no head pin at {path}, although {signed} record(s) are signed with this "
        f"orchestrator's key {own.fingerprint}: cannot prove the newest records were not "
        "deleted. It is written after every run; after an upgrade run `backupctl evidence "
        "head --pin` once (as the key's owner)"))
