"""Database kinds: one module per kind, the same names in each, chosen from one table.

Like borgmatic's data-source hooks (one module per database, dispatched by name), every
decision that differs between kinds lives in its kind's module (`Kind`, protocol.py: the dump
on the host, the quick and full proof, the runbook's restore commands); the rest of
backupctl looks the kind up here and never compares a kind's name. A new kind is one module
and one line below (DEVELOPERS.md, "Database kinds"). The job file's contract stays in
config/schema.py (`Database.kind`) and config/dsn.py (what a `dsn` of the kind looks like).
"""

from __future__ import annotations

from backupctl.databases.kinds import postgresql, sqlite
from backupctl.databases.kinds.protocol import Kind, Proving

KINDS: dict[str, Kind] = {
    "postgresql": postgresql,
    "sqlite": sqlite,
}

__all__ = ["KINDS", "Kind", "Proving"]
