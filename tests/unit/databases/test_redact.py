"""Tool messages shown to people carry no row data (redact.py)."""

from __future__ import annotations

from backupctl.databases.redact import HIDDEN, redact
from backupctl.execute import Secret

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


def test_values_and_row_lines_are_hidden_identifiers_kept() -> None:
    text = redact(PG_RESTORE)

    assert "山田" not in text and "鈴木" not in text and "42" not in text
    assert "0xe5" not in text
    assert text.splitlines() == [
        f'pg_restore: error: COPY failed for table "患者": ERROR:  invalid input syntax for '
        f"type integer: {HIDDEN}",
        'pg_restore: error: could not execute query: ERROR:  relation "patients" does not exist',
        f'ERROR:  invalid byte sequence for encoding "UTF8": {HIDDEN}',
        "pg_restore: warning: errors ignored on restore: 3"]


def test_only_the_last_lines_and_no_known_secret() -> None:
    secret = Secret("hunter2-xyz")
    text = redact("\n".join(f"line {i}" for i in range(50)) + f"\nbad {secret.reveal()}",
                  lines=3)

    assert text == "line 48\nline 49\nbad ***"
