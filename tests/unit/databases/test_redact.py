"""Tool messages shown to people carry no row data (redact.py): quoted values hidden, the
names PostgreSQL quotes after an object word kept, key values and failing rows hidden, row
and statement lines dropped with whatever a multi-line value carries on."""

from __future__ import annotations

import pytest

from backupctl.databases.redact import HIDDEN, hide_values, redact
from backupctl.execute import Secret

PATIENT = ("山田", "太郎", "鈴木", "1980-01-01", "19800101", "42")

PG_RESTORE = ('pg_restore: error: COPY failed for table "患者": ERROR:  invalid input syntax '
              'for type integer: "山田太郎"\n'
              'CONTEXT:  COPY 患者, line 3, column id: "山田太郎"\n') + """\
pg_restore: error: could not execute query: ERROR:  relation "patients" does not exist
Command was: INSERT INTO public.patients VALUES (1, '鈴木花子');
LINE 1: INSERT INTO public.patients VALUES (1, '鈴木花子');
                    ^
pg_restore: detail: Key (id)=(42) already exists.
ERROR:  invalid byte sequence for encoding "UTF8": 0xe5 0xb1
pg_restore: warning: errors ignored on restore: 3"""


def _clean(text: str) -> None:
    for value in PATIENT:
        assert value not in text, (value, text)


def test_values_and_row_lines_are_hidden_identifiers_kept() -> None:
    text = redact(PG_RESTORE)

    _clean(text)
    assert "0xe5" not in text
    assert text.splitlines() == [
        f'pg_restore: error: COPY failed for table "患者": ERROR:  invalid input syntax for '
        f"type integer: {HIDDEN}",
        'pg_restore: error: could not execute query: ERROR:  relation "patients" does not exist',
        f"pg_restore: detail: Key (id)={HIDDEN} already exists.",
        f'ERROR:  invalid byte sequence for encoding "UTF8": {HIDDEN}',
        "pg_restore: warning: errors ignored on restore: 3"]


@pytest.mark.parametrize(("line", "shown"), [
    ('ERROR:  value "山田太郎 1980-01-01" is out of range for type integer',
     f"ERROR:  value {HIDDEN} is out of range for type integer"),
    ('ERROR:  23505: duplicate key value violates unique constraint "患者_pkey"',
     'ERROR:  23505: duplicate key value violates unique constraint "患者_pkey"'),
    ('ERROR:  null value in column "名前" of relation "患者" violates not-null constraint',
     'ERROR:  null value in column "名前" of relation "患者" violates not-null constraint'),
    ('ERROR:  new row for relation "patients" violates check constraint "age_ok"',
     'ERROR:  new row for relation "patients" violates check constraint "age_ok"'),
    ('ERROR:  role "emr" does not exist', 'ERROR:  role "emr" does not exist'),
    ('ERROR:  relation "odd""name" does not exist', 'ERROR:  relation "odd""name" does not exist'),
    ('ERROR:  invalid value for parameter "TimeZone": "山田"',
     f'ERROR:  invalid value for parameter "TimeZone": {HIDDEN}'),
    ('ERROR:  syntax error at or near "山田"', f"ERROR:  syntax error at or near {HIDDEN}"),
    ("ERROR:  unterminated quoted string at or near '山田 x'",
     f"ERROR:  unterminated quoted string at or near {HIDDEN}"),
    ('ERROR:  could not open file "/srv/患者/山田.csv": No such file',
     f"ERROR:  could not open file {HIDDEN}: No such file"),
    ("ERROR:  permission denied for table patients",
     "ERROR:  permission denied for table patients"),
    ("ERROR:  can't do that to table \"t\"", "ERROR:  can't do that to table \"t\""),
    ('initdb: error: could not create directory "/scratch/pg": Permission denied',
     'initdb: error: could not create directory "/scratch/pg": Permission denied'),
])
def test_one_line(line: str, shown: str) -> None:
    assert redact(line) == shown


def test_a_value_holding_quotes_and_an_object_word_stays_hidden() -> None:
    # PostgreSQL does not escape quotes inside a value: the value runs to the last quote.
    line = 'ERROR:  invalid input syntax for type integer: "x" of relation "山田太郎"'
    assert redact(line) == f"ERROR:  invalid input syntax for type integer: {HIDDEN}"


@pytest.mark.parametrize(("detail", "shown"), [
    ("DETAIL:  Key (名前)=(山田太郎) already exists.",
     f"DETAIL:  Key (名前)={HIDDEN} already exists."),
    ("DETAIL:  Key (name, dob)=(山田太郎, 1980-01-01) already exists.",
     f"DETAIL:  Key (name, dob)={HIDDEN} already exists."),
    ('DETAIL:  Key (patient)=(42) is not present in table "患者".',
     f'DETAIL:  Key (patient)={HIDDEN} is not present in table "患者".'),
    ('DETAIL:  Key (id)=(42) is still referenced from table "visits".',
     f'DETAIL:  Key (id)={HIDDEN} is still referenced from table "visits".'),
    ("DETAIL:  Key (lower(name))=(山田) already exists.",
     f"DETAIL:  Key (lower(name))={HIDDEN} already exists."),
    ("DETAIL:  Key (r)=([1,5)) conflicts with existing key (r)=([19800101,3)).",
     f"DETAIL:  Key (r)={HIDDEN} conflicts with existing key (r)={HIDDEN}."),
    ("DETAIL:  Key (a)=(山田) already exists. trailing 太郎",
     f"DETAIL:  Key (a)={HIDDEN}"),
    ("DETAIL:  Failing row contains (1, 山田太郎, 1980-01-01).",
     f"DETAIL:  Failing row contains {HIDDEN}."),
    ("DETAIL:  Partition key of the failing row contains (dob) = (1980-01-01).",
     f"DETAIL:  Partition key of the failing row contains (dob) = {HIDDEN}."),
    ("2026-02-02 17:00:00.123 UTC [4242] DETAIL:  Key (id)=(42) already exists.",
     f"2026-02-02 17:00:00.123 UTC [4242] DETAIL:  Key (id)={HIDDEN} already exists."),
])
def test_detail_keeps_the_columns_never_the_values(detail: str, shown: str) -> None:
    assert redact(detail) == shown


@pytest.mark.parametrize("detail", [
    'DETAIL:  Token "山田" is invalid.',
    "DETAIL:  Array value must start with 1980-01-01",
    "pg_restore: detail: 山田太郎",
])
def test_other_detail_lines_are_dropped(detail: str) -> None:
    assert redact(detail + "\nERROR:  x") == "ERROR:  x"


def test_a_value_with_a_newline_is_dropped_up_to_the_next_message() -> None:
    text = ("ERROR:  invalid input syntax for type integer: \"山田\n\n太郎 1980-01-01\"\n"
            "DETAIL:  Key (a)=(鈴木\n19800101) already exists.\n"
            "DETAIL:  Failing row contains (1, 山田\n太郎).\n"
            "psql:<stdin>:3: ERROR:  relation \"t\" does not exist")
    shown = redact(text)
    _clean(shown)
    assert shown.splitlines() == [
        f"ERROR:  invalid input syntax for type integer: {HIDDEN}",
        f"DETAIL:  Key (a)={HIDDEN}", f"DETAIL:  Failing row contains {HIDDEN}.",
        'psql:<stdin>:3: ERROR:  relation "t" does not exist']


def test_statements_and_context_are_dropped_with_their_continuation_lines() -> None:
    text = ("pg_restore: error: could not execute query: ERROR:  syntax error\n"
            "Command was: INSERT INTO t VALUES (19800101,\n  42);\n"
            "2026-02-02 17:00:00.123 UTC [4242] STATEMENT:  INSERT INTO t VALUES (19800101)\n"
            "CONTEXT:  COPY t, line 1: \"42\t山田\"\n"
            "WHERE:  PL/pgSQL function f() line 3\n"
            "LINE 1: INSERT INTO t VALUES (19800101);\n"
            "                              ^\n"
            "pg_restore: warning: errors ignored on restore: 1")
    assert redact(text).splitlines() == [
        "pg_restore: error: could not execute query: ERROR:  syntax error",
        "pg_restore: warning: errors ignored on restore: 1"]


def test_hide_values_says_when_a_quote_is_left_open() -> None:
    assert hide_values('x: "山田') == (f"x: {HIDDEN}", True)
    assert hide_values('relation "patients') == (f"relation {HIDDEN}", True)
    assert hide_values('relation "p" and "v"') == (f'relation "p" and {HIDDEN}', False)


def test_only_the_last_lines_and_no_known_secret() -> None:
    secret = Secret("hunter2-xyz")
    text = redact("\n".join(f"line {i}" for i in range(50)) + f"\nbad {secret.reveal()}",
                  lines=3)

    assert text == "line 48\nline 49\nbad ***"
