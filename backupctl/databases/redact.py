"""Tool messages made safe to show: no row data from PostgreSQL or pg_restore errors.

Restored data is patient data, and PostgreSQL quotes it: `invalid input syntax for type
integer: "山田"`, `value "山田太郎 1980-01-01" is out of range for type integer`, `DETAIL:
Key (name)=(山田太郎) already exists.`, `Failing row contains (1, 山田太郎, …)`, and whole rows
or statements in CONTEXT (`COPY t, line 3: "..."`), `Command was:` and `LINE n:` lines. The
rule (SPEC §10a; docs/verify.md "What an error message keeps"):

- A double-quoted name is kept when an object word comes right before it (`relation
  "patients"`, `constraint "patients_pkey"`, `column "name" of relation "患者"`, `role`,
  `database`, `index`, `function`, `schema`, `sequence`, `type`, `trigger`, `view`, …): that
  is how PostgreSQL quotes identifiers. Every other quoted text, double or single, is a value
  and becomes `(value hidden)`, from its opening quote to the *last* quote of that kind on
  the line (a value may itself hold quotes and an object word, and is not escaped).
- `Key (columns)=(values)` keeps the columns and hides the values; `Failing row contains
  (...)` hides the row; other DETAIL lines, and CONTEXT, QUERY, STATEMENT, WHERE, `Command
  was:` and `LINE n:` lines, are dropped with every following line that does not start a
  new message (a value with a newline in it goes on there). So does a quote left open.
- Unquoted words are kept: the SQLSTATE (`ERROR:  23505: ...` with verbose errors), the
  message text, unquoted identifiers. Byte sequences (`0xe5 0xb1`) are hidden.
"""

from __future__ import annotations

import re

from backupctl.execute import tail
from backupctl.log import mask

HIDDEN = "(value hidden)"
_OBJECT_WORDS = (
    "relation", "table", "constraint", "index", "column", "function", "procedure",
    "aggregate", "routine", "role", "user", "database", "schema", "sequence", "type", "domain",
    "trigger", "view", "extension", "policy", "collation", "operator", "language",
    "tablespace", "server", "publication", "subscription", "rule", "encoding", "parameter",
    "cursor", "statement", "savepoint", "conversion", "partition", "attribute", "family",
    "class", "template", "configuration", "dictionary", "parser", "mapping", "object",
    "directory")  # the cluster's own directories (initdb, pg_ctl), never restored data
_NAMED = re.compile(r"\b(?:" + "|".join(_OBJECT_WORDS) + r")\s+$", re.IGNORECASE)
# What may stand before a label: a tool's prefix (`pg_restore: `, `psql:<stdin>:3: `) or the
# server log's (`2026-02-02 17:00:00.123 UTC [4242] `).
_LEAD = (r"(?:[^\s:]+(?::[^\s:]+)*:\s+"
         r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[\d+\] )?")
# A line that starts a message of its own (ends a dropped DETAIL, CONTEXT or statement).
_STARTS = re.compile(
    r"^\s*(?:(?:pg_restore|pg_dump|pg_dumpall|psql|pg_ctl|initdb|postgres|sqlite3)(?:\[\d+\])?:"
    r"|(?:ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|LOG|DEBUG\d?|HINT|DETAIL|CONTEXT|STATEMENT"
    r"|QUERY|LOCATION|WHERE):|LINE \d+:|Command was:"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[\d+\] )")
_DROP = re.compile(r"^\s*" + _LEAD + r"(?:CONTEXT|context|QUERY|STATEMENT|WHERE|Command was"
                   r"|LINE \d+):|^\s*\^\s*$")
_DETAIL = re.compile(r"^(?P<lead>\s*" + _LEAD + r"(?:DETAIL|detail):\s*)(?P<text>.*)$")
_KEY = re.compile(r"^(?P<head>(?:Partition key of the failing row contains|Key) \((?P<cols>.*?)"
                  r"\)\s?=\s?)\((?P<rest>.*)$")
_KEY_TAIL = re.compile(r'\)(?P<tail> (?:already exists|is not present in table "(?:[^"]|"")*"'
                       r'|is still referenced from table "(?:[^"]|"")*")'
                       r'|(?P<other> conflicts with existing key \((?P<cols>.*?)\)=\(.*\)))?'
                       r'\.?\s*$')
_ROW = re.compile(r"^(?P<head>.*\bFailing row contains )\(.*$")
_BYTES = re.compile(r": 0x[0-9a-fA-F]{2}(?: 0x[0-9a-fA-F]{2})*")


def redact(text: str, *, lines: int = 12) -> str:
    """The last `lines` lines of `text` that may be shown, with values hidden."""
    kept: list[str] = []
    dropping = False  # inside a dropped DETAIL/CONTEXT/statement, or after an open quote
    for line in text.splitlines():
        if dropping and not _STARTS.match(line):
            continue  # an empty line too: a value may hold one
        dropping = False
        if not line.strip():
            continue
        if _DROP.search(line):
            dropping = True
            continue
        shown, dropping = redact_line(line)
        if shown is not None:
            kept.append(shown)
    return mask(tail("\n".join(kept), lines))


def redact_line(line: str) -> tuple[str | None, bool]:
    """(the line as it may be shown or None, whether what follows is still part of it)."""
    if (detail := _DETAIL.match(line)) is not None:
        return _detail(detail.group("lead"), detail.group("text"))
    hidden, unfinished = hide_values(line)
    return _BYTES.sub(f": {HIDDEN}", hidden), unfinished


def _detail(lead: str, text: str) -> tuple[str | None, bool]:
    """A DETAIL line keeps only the shapes known to say which key or row: columns, never
    values; anything else in DETAIL may quote a row and is dropped."""
    if (key := _KEY.match(text)) is not None:
        ends = _KEY_TAIL.search(key.group("rest"))
        shown = f"{lead}{key.group('head')}{HIDDEN}"
        if ends is None:  # the values go on past this line, or an unknown shape
            return shown, True
        if ends.group("other"):
            return f"{shown} conflicts with existing key ({ends.group('cols')})={HIDDEN}.", False
        return f"{shown}{ends.group('tail') or ''}.", False
    if (row := _ROW.match(text)) is not None:
        whole = text.rstrip().endswith((")", ")."))
        return f"{lead}{row.group('head')}{HIDDEN}.", not whole
    return None, True


def hide_values(line: str) -> tuple[str, bool]:
    """Every quoted value in `line` hidden, quoted names after an object word kept; True when
    a quote is left open (the value continues on the next lines)."""
    out: list[str] = []
    i = 0
    while i < len(line):
        char = line[i]
        opens = char == '"' or (char == "'" and (i == 0 or not _word(line[i - 1])))
        if not opens:
            out.append(char)
            i += 1
            continue
        if char == '"' and _NAMED.search(line[:i]) and (end := _name_end(line, i)) is not None:
            out.append(line[i:end])
            i = end
            continue
        last = line.rfind(char)
        if last == i:  # never closed here: the value runs on into the next lines
            out.append(HIDDEN)
            return "".join(out), True
        out.append(HIDDEN)
        i = last + 1
    return "".join(out), False


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _name_end(line: str, start: int) -> int | None:
    """The index after the closing quote of an identifier (`""` inside is one quote)."""
    i = start + 1
    while i < len(line):
        if line[i] == '"':
            if line[i + 1:i + 2] == '"':
                i += 2
                continue
            return i + 1
        i += 1
    return None
