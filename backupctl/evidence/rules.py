"""What a record may be at its place in the chain (SPEC §6, "rules a database writer cannot
bend"): the rules that hold even when every hash was recomputed.

The chain is, in order: version-1 records (an unbroken run at the start: what backupctl
0.1 wrote), then unsigned version-2 records (written before any evidence key existed), then
signed version-2 records only. So:
- a version-1 record after a version-2 one, one that carries version-2 fields
  (`orchestrator`, `signature`, `key_fingerprint`), or one marked `chain_version` 1 (never
  written: version 1 has no such field) was downgraded;
- an unsigned record after the first signed one (or at or after the first signed seq the
  head pin names) was stripped, as is an unsigned one that names its key;
- a signature must verify with the key the record names (`key_fingerprint`, inside the
  hashed content); that key must be this orchestrator's or in `evidence_trusted_keys`.
  Version-2 records signed before records named their key verify with any accepted key.
  Without the public key(s) a signed record cannot be proven: exit 1, never "OK".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backupctl.evidence.model import UNPROVEN, Entry, Problem
from backupctl.signing import Keyring, PublicKey

CHAIN_VERSION = 2
V2_ONLY = ("orchestrator", "signature", "key_fingerprint")


@dataclass
class Seen:
    """What the walk has met so far (chain order)."""

    first_signed: int | None = None  # from the head pin: seq at and after which all are signed
    first_v2: Entry | None = None
    signed_first: Entry | None = None  # the first signed record met
    signed: int = 0  # records whose signature verified
    unsigned: int = 0  # version-2 records before the first signed one
    signers: dict[str, int] = field(default_factory=dict)  # fingerprint → records it signed


def visit(e: Entry, seen: Seen, keys: Keyring | None) -> Problem | None:
    """The rule `e` breaks at its place, if any; updates `seen`."""
    version = e.record.get("chain_version")
    if version is None:
        return _version_1(e, seen)
    if version != CHAIN_VERSION:
        return Problem(e.seq, e.id, "downgraded", (
            f"record {e.name()} has chain_version {version!r}, which backupctl never writes "
            "(version-1 records have no chain_version): it was downgraded or forged"))
    if seen.first_v2 is None:
        seen.first_v2 = e
    signature = e.record.get("signature")
    if not signature:
        return _unsigned(e, seen)
    if seen.signed_first is None:
        seen.signed_first = e
    problem, key = _signature(e, str(signature), keys)
    if key is not None:
        seen.signed += 1
        seen.signers[key.fingerprint] = seen.signers.get(key.fingerprint, 0) + 1
    return problem


def _version_1(e: Entry, seen: Seen) -> Problem | None:
    carried = [k for k in V2_ONLY if e.record.get(k) not in (None, "")]
    if carried:
        return Problem(e.seq, e.id, "downgraded", (
            f"record {e.name()} is marked version 1 but carries version-2 fields "
            f"({', '.join(carried)}): a version-2 record was downgraded"))
    after = seen.first_v2 or seen.signed_first
    if after is not None:
        return Problem(e.seq, e.id, "downgraded", (
            f"record {e.name()} is version 1 after version-2 record {after.name()}: version 1 "
            "is only valid as the unbroken start of the chain; it was downgraded or forged"))
    if seen.first_signed is not None and e.seq >= seen.first_signed:
        return Problem(e.seq, e.id, "downgraded", (
            f"record {e.name()} is version 1, but the head pin says every record from seq "
            f"{seen.first_signed} on is signed: it was downgraded"))
    return None


def _unsigned(e: Entry, seen: Seen) -> Problem | None:
    if seen.signed_first is not None:
        return Problem(e.seq, e.id, "stripped", (
            f"record {e.name()} is not signed although {seen.signed_first.name()} before it "
            "is: its signature was stripped (or it was written without the evidence key)"))
    if seen.first_signed is not None and e.seq >= seen.first_signed:
        return Problem(e.seq, e.id, "stripped", (
            f"record {e.name()} is not signed, but the head pin says every record from seq "
            f"{seen.first_signed} on is: its signature was stripped"))
    if e.record.get("key_fingerprint"):
        return Problem(e.seq, e.id, "stripped", (
            f"record {e.name()} names evidence key {e.record['key_fingerprint']} but has no "
            "signature: it was stripped"))
    seen.unsigned += 1
    return None


def _signature(e: Entry, signature: str,
               keys: Keyring | None) -> tuple[Problem | None, PublicKey | None]:
    """(problem, the key that verified it)."""
    named = e.record.get("key_fingerprint")
    own = keys.own if keys is not None else None
    if named:
        key = keys.get(str(named)) if keys is not None else None
        if key is None and own is None:
            return _unproven(e, f"it is signed with key {named}"), None
        if key is None:
            return Problem(e.seq, e.id, "foreign-key", (
                f"record {e.name()} is signed with key {named}, which is neither this "
                f"orchestrator's evidence key {own.fingerprint if own else ''} nor in "
                "evidence_trusted_keys: a foreign key (forged, or another orchestrator's "
                "key is missing from evidence_trusted_keys)")), None
        if key.verify(e.hash, signature):
            return None, key
        return Problem(e.seq, e.id, "signature", (
            f"record {e.name()}: its signature does not verify with key {named}: the record "
            "was forged or re-signed with another key")), None
    candidates = keys.accepted() if keys is not None else []
    key = next((k for k in candidates if k.verify(e.hash, signature)), None)
    if key is not None:
        return None, key
    if own is None:
        return _unproven(e, "it is signed"), None
    return Problem(e.seq, e.id, "signature", (
        f"record {e.name()}: its signature does not verify with the evidence key "
        f"{own.fingerprint} or any trusted key: the record was forged or re-signed with "
        "another key")), None


def _unproven(e: Entry, why: str) -> Problem:
    return Problem(e.seq, e.id, UNPROVEN, (
        f"record {e.name()} cannot be proven: {why}, but this orchestrator's public key "
        "(evidence_key + .pub) is missing; restore it (or list the key in "
        "evidence_trusted_keys)"))
