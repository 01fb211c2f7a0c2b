"""The redaction rule against the error texts a real PostgreSQL 15 server and its tools
write (issue #24): every value of the patients' rows is hidden, the SQLSTATE and the names
of the objects concerned are kept (SPEC §10a)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from backupctl.databases.redact import HIDDEN, redact
from tests.conftest import PG_BIN
from tests.integration.databases.conftest import SourceDb

SCHEMA = """
CREATE UNIQUE INDEX 患者_名前 ON 患者 (名前);
CREATE TABLE visits (id int, 名前 text NOT NULL, dob date CHECK (dob > '1900-01-01'));
CREATE TABLE notes (patient text REFERENCES 患者 (名前));
"""
VALUES = ("山田太郎", "鈴木一郎", "1800-01-01", "19800101198001011980", "佐藤花子")

# (statement, SQLSTATE, object names the redacted text must still carry)
CASES = [
    ("INSERT INTO 患者 VALUES (9, '山田太郎', '内科');", "23505", ['"患者_名前"']),
    ("SELECT '19800101198001011980'::int;", "22003", []),
    ("SELECT '佐藤花子'::int;", "22P02", []),
    ("INSERT INTO visits VALUES (1, '山田太郎', '1800-01-01');", "23514",
     ['"visits"', '"visits_dob_check"']),
    ("INSERT INTO visits VALUES (1, NULL, '1800-01-01');", "23502",
     ['"名前"', '"visits"']),
    ("INSERT INTO notes VALUES ('鈴木一郎');", "23503", ['"notes"', '"患者"']),
    ("SELECT 名前 FROM patients WHERE 名前 = '山田太郎';", "42P01", ['"patients"']),
    ("COPY visits FROM stdin;\n山田太郎\t鈴木一郎\t1800-01-01\n\\.", "22P02", []),
]


def _psql(db: SourceDb, sql: str, *, verbose: bool) -> str:
    argv = [str(PG_BIN / "psql"), "-X", "-q", "-d", db.dsn, "-v", "ON_ERROR_STOP=1"]
    if verbose:
        argv += ["-v", "VERBOSITY=verbose"]
    done = subprocess.run(argv, input=sql + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, "the statement was meant to fail"
    return done.stderr


@pytest.fixture
def hospital(source_db: SourceDb) -> SourceDb:
    source_db.psql(SCHEMA)
    return source_db


def test_real_server_errors_keep_sqlstate_and_names_never_a_value(hospital: SourceDb) -> None:
    for sql, state, names in CASES:
        raw = _psql(hospital, sql, verbose=True)
        assert any(v in raw for v in VALUES), f"{sql!r} quoted no value: {raw!r}"

        shown = redact(raw, lines=50)

        assert not [v for v in VALUES if v in shown], (raw, shown)
        assert f"ERROR:  {state}:" in shown, (raw, shown)
        for name in names:
            assert name in shown, (name, raw, shown)
        assert "LOCATION:" in shown  # the server's own words are kept


def test_a_key_and_a_failing_row_say_which_columns_never_which_values(
        hospital: SourceDb) -> None:
    duplicate = redact(_psql(hospital, CASES[0][0], verbose=False))
    assert duplicate.splitlines() == [
        'ERROR:  duplicate key value violates unique constraint "患者_名前"',
        f"DETAIL:  Key (\"名前\")={HIDDEN} already exists."]
    failing = redact(_psql(hospital, CASES[3][0], verbose=False))
    assert failing.splitlines() == [
        'ERROR:  new row for relation "visits" violates check constraint '
        '"visits_dob_check"', f"DETAIL:  Failing row contains {HIDDEN}."]
    missing = redact(_psql(hospital, CASES[5][0], verbose=False))
    assert f'DETAIL:  Key (patient)={HIDDEN} is not present in table "患者".' in missing


def test_pg_restore_errors_of_a_real_dump(hospital: SourceDb, tmp_path: Path) -> None:
    """Restoring a table's rows again over themselves: pg_restore's COPY fails on the key,
    which is a patient's name."""
    hospital.psql("CREATE TABLE 受付 (名前 text PRIMARY KEY, dob date);"
                  "INSERT INTO 受付 VALUES ('山田太郎', '1980-01-01');")
    dump = tmp_path / "emr.pgdump"
    subprocess.run([str(PG_BIN / "pg_dump"), "--format=custom", "--table=受付", "--file",
                    str(dump), "--dbname", hospital.dsn], check=True, capture_output=True,
                   timeout=120)
    done = subprocess.run([str(PG_BIN / "pg_restore"), "--data-only", "--dbname",
                           hospital.dsn, str(dump)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "山田太郎" in done.stderr, done.stderr

    shown = redact(done.stderr, lines=50)

    assert not [v for v in (*VALUES, "1980-01-01") if v in shown], (done.stderr, shown)
    assert shown.splitlines() == [
        'pg_restore: error: COPY failed for table "受付": ERROR:  duplicate key value '
        'violates unique constraint "受付_pkey"',
        f"DETAIL:  Key (\"名前\")={HIDDEN} already exists.",
        "pg_restore: warning: errors ignored on restore: 1"]
