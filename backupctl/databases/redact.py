"""Tool messages made safe to show: no row data from PostgreSQL or pg_restore errors.

Restored data is patient data. PostgreSQL's error texts can quote a value (`invalid input
syntax for type integer: "山田"`), and its DETAIL, CONTEXT (`COPY t, line 3: "..."`) and
`Command was:` lines can hold whole rows. Those lines are dropped and quoted values after
`: ` hidden; identifiers (`relation "patients" does not exist`) are kept, so the message
still says what is wrong.
"""

from __future__ import annotations

import re

from backupctl.execute import tail
from backupctl.log import mask

HIDDEN = "(value hidden)"
_DROP = re.compile(r"^\s*(?:\S+:\s+)?(?:DETAIL|detail|CONTEXT|context|Command was|LINE \d+|"
                   r"QUERY|STATEMENT|WHERE)\b|^\s*\^\s*$")
_VALUE = re.compile(r': "(?:[^"]|"")*"')
_BYTES = re.compile(r": 0x[0-9a-fA-F]{2}(?: 0x[0-9a-fA-F]{2})*")


def redact(text: str, *, lines: int = 12) -> str:
    """The last `lines` lines of `text` that may be shown, with values hidden."""
    kept = []
    for line in text.splitlines():
        if not line.strip() or _DROP.search(line):
            continue
        line = _VALUE.sub(f": {HIDDEN}", line)
        kept.append(_BYTES.sub(f": {HIDDEN}", line))
    return mask(tail("\n".join(kept), lines))
