"""state/lease_view.py: `status` on a SQLite site reads leases without loading psycopg."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from backupctl.state.lease_view import lock_key

PROGRAM = """
import sys
from backupctl.actions import fleet
from backupctl.state.db import Store
from backupctl.state.lease_view import current_leases
store = Store("sqlite:///" + sys.argv[1])
assert store.query(current_leases) == []
print("psycopg" in sys.modules)
"""


def test_reading_leases_on_sqlite_never_imports_psycopg(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(tmp_path / "state.db")],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_lease_keys_have_the_high_bit_and_differ_per_job() -> None:
    assert lock_key("emr-db") >> 62 == 1
    assert lock_key("emr-db") != lock_key("pacs")
