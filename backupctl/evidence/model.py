"""The values every evidence check passes around: a record at its place, and a problem found.

Kept apart from chain.py so that the rules a record must follow (rules.py) and the head pin
(pin.py) can name records and problems without importing the chain walker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backupctl.status import ExitStatus

# What a problem says was done. Every one is a forgery (exit 3) except UNPROVEN: the check
# could not be made (a public key or the head pin cannot be read), which is exit 1, never OK.
UNPROVEN = "unverifiable"
WHATS = ("edited", "deleted", "inserted", "reordered", "signature", "stripped", "downgraded",
         "foreign-key", "pin", "missing", "anchor", UNPROVEN)


@dataclass(frozen=True)
class Entry:
    """A record with its position in the database."""

    seq: int
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.record.get("id"))

    @property
    def hash(self) -> str:
        return str(self.record.get("hash"))

    def name(self) -> str:
        return f"seq {self.seq} (id {self.id})"


@dataclass(frozen=True)
class Problem:
    """One place where the evidence does not hold (or cannot be proven to)."""

    seq: int | None
    id: str | None
    what: str  # one of WHATS
    message: str

    @property
    def proven(self) -> bool:
        """True for a forgery found; False when the check could not be made."""
        return self.what != UNPROVEN

    @property
    def status(self) -> ExitStatus:
        return ExitStatus.BAD_DATA if self.proven else ExitStatus.FAILED

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "id": self.id, "what": self.what, "message": self.message}


def worst(problems: list[Problem]) -> ExitStatus:
    """Exit 3 when any problem is a forgery, 1 when some could only not be proven, else 0."""
    return ExitStatus.worst([p.status for p in problems])
