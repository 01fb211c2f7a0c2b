"""`evidence verify --db`: the chain, its signatures, every run's record, the head pin, anchors.

What it catches (docs/audit.md has the threat model):
- a record edited, inserted, reordered or deleted in the middle (hash links);
- a record rewritten with its hash recomputed: its signature no longer verifies (Ed25519,
  key outside the database); signatures stripped or records downgraded to version 1
  (rules.py); a record signed with a key that is neither the own one nor trusted;
- a run recorded without its evidence record, or whose record was deleted together with
  later ones: every finished run must have one;
- the newest records deleted (the chain cut short), with or without their runs: the
  database's head is before the head pin beside the key (always), or before an anchor
  written outside it (anchor file, immutable copies).
Exit 3 names what was forged; exit 1 when something could not be proven (a public key or
the pin cannot be read); never "OK" then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backupctl.config.validate import Config
from backupctl.errors import UsageError
from backupctl.evidence import anchor, chain, pin
from backupctl.evidence.model import UNPROVEN, worst
from backupctl.signing import Keyring, load_keyring
from backupctl.state import queries
from backupctl.state.db import Store
from backupctl.status import ExitStatus


@dataclass(frozen=True)
class Audit:
    check: chain.ChainCheck
    problems: list[chain.Problem] = field(default_factory=list)  # forgeries first
    key_fingerprint: str | None = None
    anchors: int = 0  # anchored heads compared
    sources: list[str] = field(default_factory=list)  # where the anchors came from
    trusted: list[str] = field(default_factory=list)  # fingerprints of the trusted keys
    pinned: pin.Pin | None = None  # the head pin compared (None: there was none)

    @property
    def problem(self) -> chain.Problem | None:
        return self.problems[0] if self.problems else None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def status(self) -> ExitStatus:
        return worst(self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {**self.check.to_dict(), "ok": self.ok, "exit_code": int(self.status),
                "problem": self.problem.to_dict() if self.problem else None,
                "problems": [p.to_dict() for p in self.problems],
                "key_fingerprint": self.key_fingerprint, "trusted_keys": self.trusted,
                "head_pin": ({"seq": self.pinned.seq, "hash": self.pinned.hash,
                              "first_signed_seq": self.pinned.first_signed_seq,
                              "written_at": self.pinned.written_at}
                             if self.pinned else None),
                "anchors": self.anchors, "anchor_sources": self.sources}


def read_anchor_file(path: Path) -> list[chain.Anchor]:
    try:
        return chain.parse_anchors(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"anchor file {path}: {exc}") from None


def keyring(config: Config) -> Keyring:
    return load_keyring(config.settings.evidence_key, config.settings.evidence_trusted_keys)


def of_config(config: Config, store: Store, *, entries: Sequence[chain.Entry] | None = None,
              anchor_files: Sequence[Path] = (),
              copies: Sequence[tuple[str, list[anchor.Stored]]] = (),
              pin_required: bool = True) -> Audit:
    """`audit` with the keys and the head pin the configuration names."""
    return audit(store, keys=keyring(config), pin_path=pin.path_for(
        config.settings.evidence_key), entries=entries, anchor_files=anchor_files,
        copies=copies, pin_required=pin_required)


def audit(store: Store, *, keys: Keyring, pin_path: Path | None,
          entries: Sequence[chain.Entry] | None = None, anchor_files: Sequence[Path] = (),
          copies: Sequence[tuple[str, list[anchor.Stored]]] = (),
          pin_required: bool = True) -> Audit:
    """Everything `evidence verify --db` checks, every problem found (forgeries first).

    Without `pin_required` a missing head pin is no problem (`evidence head --pin` is about
    to write the first one)."""
    with store.read() as conn:
        entries = list(chain.entries(conn)) if entries is None else entries
        unrecorded = queries.finished_runs_without_evidence(conn)
    pinned, distrust = _pin(pin_path, keys)
    believed = pinned if not distrust else None
    checked = chain.check(entries, keys=keys,
                          first_signed=believed.first_signed_seq if believed else None)
    problems = [checked.problem] if checked.problem else []
    problems += [chain.Problem(None, None, "missing", (
        f"{row.kind} run {row.id} of {row.job} ({row.status}, finished {row.finished_at}) has "
        "no evidence record: it was deleted")) for row in unrecorded]
    problems += distrust or _against_pin(entries, believed, checked, keys,
                                         path=pin_path if pin_required else None)
    anchors, sources = 0, []
    for path in anchor_files:
        found = read_anchor_file(path)
        anchors += len(found)
        sources.append(str(path))
        if (problem := chain.check_anchors(entries, found)) is not None:
            problems.append(problem)
    for name, stored in copies:
        anchors += len(stored)
        sources.append(f"immutable copy {name}")
        if (problem := anchor.compare(entries, stored, copy=name)) is not None:
            problems.append(problem)
    problems.sort(key=lambda p: not p.proven)
    return Audit(checked, problems, keys.own.fingerprint if keys.own else None, anchors,
                 sources, [k.fingerprint for k in keys.trusted], pinned)


def _against_pin(entries: Sequence[chain.Entry], pinned: pin.Pin | None,
                 checked: chain.ChainCheck, keys: Keyring, *,
                 path: Path | None) -> list[chain.Problem]:
    """The chain against the (believed) pin; without one, records signed with the own key
    cannot be proven complete (`path`: where the pin should be; None: not required)."""
    if pinned is not None:
        return pin.compare(entries, pinned)
    own = keys.own
    signed = checked.signers.get(own.fingerprint, 0) if own is not None else 0
    if path is None or own is None or not signed:
        return []
    return [pin.missing_problem(path, own, signed)]


def _pin(path: Path | None, keys: Keyring) -> tuple[pin.Pin | None, list[chain.Problem]]:
    """The head pin, if any, and what is wrong with the file itself."""
    if path is None:
        return None, []
    try:
        found = pin.read(path)
    except pin.PinError as exc:
        return None, [chain.Problem(None, None, "pin", (
            f"the head pin {path} is not a head pin ({exc}): it was altered"))]
    except OSError as exc:
        return None, [chain.Problem(None, None, UNPROVEN, (
            f"the head pin {path} cannot be read ({exc.strerror or exc}): run as the evidence "
            "key's owner"))]
    distrust = pin.trust_problem(found, keys.own, path=path) if found is not None else None
    return found, [distrust] if distrust is not None else []
