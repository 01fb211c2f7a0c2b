"""Pure helpers of database restore tests: row counts, schema fingerprints, check values,
tables of contents."""

from __future__ import annotations

import pytest

from backupctl.databases.compare import (
    NO_FINGERPRINT,
    SchemaComparison,
    check_verdict,
    compare_counts,
    compare_schema,
    judge_schema,
    parse_qualified,
    restic_read_damaged,
    schema_not_in_toc,
    tables_without_data,
    toc_header,
)
from backupctl.state.database_proof import SchemaMismatch, SchemaObject, TableCount

TOC = """;
; Archive created at 2026-11-30 22:52:56 UTC
;     dbname: emr
;     Dumped from database version: 15.18 (Debian 15.18-0+deb12u1)
;     Dumped by pg_dump version: 16.2
;
216; 1259 16390 TABLE public pgbench_accounts postgres
3358; 0 16390 TABLE DATA public pgbench_accounts postgres
3359; 0 16393 TABLE DATA public 患者 postgres
3360; 0 16394 TABLE DATA my schema Odd Table emr owner
3211; 2606 16405 CONSTRAINT public pgbench_accounts pgbench_accounts_pkey postgres
"""


def test_equal_counts_are_no_mismatch() -> None:
    assert compare_counts({"public.a": 3, "public.b": 0}, {"public.b": 0, "public.a": 3}) == []


def test_every_kind_of_difference_is_named_sorted() -> None:
    found = compare_counts({"public.a": 3, "public.b": 5, "public.c": 1},
                           {"public.a": 2, "public.c": 1, "public.d": 7})

    assert found == [TableCount("public.a", 3, 2, "rows"),
                     TableCount("public.b", 5, None, "missing"),
                     TableCount("public.d", None, 7, "unexpected")]
    assert [m.describe("emr") for m in found] == [
        "database emr, table public.a: expected 3 rows, restored 2",
        "database emr, table public.b: expected 5 rows, the table is missing from the restored "
        "database",
        "database emr, table public.d: restored 7 rows but the backup counted no such table"]


@pytest.mark.parametrize(("row", "kind", "passed", "detail"), [
    ((True,), "postgresql", True, ""),
    ((False,), "postgresql", False, "returned false"),
    ((None,), "postgresql", False, "returned NULL"),
    (None, "postgresql", False, "returned no row; a check must return true"),
    ((), "postgresql", False, "returned no row; a check must return true"),
    ((1,), "postgresql", False, "returned a value of type int, not a boolean"),
    ((1,), "sqlite", True, ""),
    ((0,), "sqlite", False, "returned false"),
    ((2,), "sqlite", False, "returned a value of type int, not a boolean"),
    (("山田太郎",), "postgresql", False, "returned a value of type str, not a boolean"),
])
def test_check_verdict(row: tuple[object, ...] | None, kind: str, passed: bool,
                       detail: str) -> None:
    got_passed, got_detail = check_verdict(row, integer_booleans=kind == "sqlite")
    assert got_passed is passed and got_detail.startswith(detail)
    assert "山田" not in got_detail  # a returned value is never shown


@pytest.mark.parametrize(("name", "parts"), [
    ("public.pgbench_accounts", ("public", "pgbench_accounts")),
    ('public."患者"', ("public", "患者")),
    ('"my schema"."Odd Table"', ("my schema", "Odd Table")),
    ('"a.b"."say ""hi"""', ("a.b", 'say "hi"')),
])
def test_parse_qualified(name: str, parts: tuple[str, str]) -> None:
    assert parse_qualified(name) == parts


@pytest.mark.parametrize("name", ["nodot", "a.b.c", '"unterminated.x', '"a"b.c'])
def test_parse_qualified_refuses(name: str) -> None:
    with pytest.raises(ValueError, match="not a qualified table name"):
        parse_qualified(name)


def test_tables_without_data_in_the_table_of_contents() -> None:
    tables = {"public.pgbench_accounts": 10, 'public."患者"': 3,
              '"my schema"."Odd Table"': 5, "public.pgbench_history": 20,
              "public.pgbench": 1}

    assert tables_without_data(tables, TOC) == [
        TableCount("public.pgbench", 1, None, "no data in the dump"),
        TableCount("public.pgbench_history", 20, None, "no data in the dump")]


def test_toc_header() -> None:
    assert toc_header(TOC, "Dumped by pg_dump version") == "16.2"
    assert toc_header(TOC, "dbname") == "emr"
    assert toc_header(TOC, "Compression") is None


@pytest.mark.parametrize(("stderr", "damaged"), [
    ("cannot dump file: decrypting blob 39 failed: ciphertext verification failed", True),
    ('cannot dump file: path "/j/x.pgdump" not found in snapshot', True),
    ('invalid id "deadbeef": no matching ID found for prefix "deadbeef"', False),
    ("Fatal: wrong password or no key found", False),
    ("Fatal: unable to open config file: stat /r/config: no such file or directory", False),
])
def test_restic_read_damaged(stderr: str, damaged: bool) -> None:
    assert restic_read_damaged(stderr) is damaged


def _objects(*items: tuple[str, str, str, str]) -> list[SchemaObject]:
    return [SchemaObject(*item) for item in items]


PKEY = ("primary key", "public.pgbench_accounts", "pgbench_accounts_pkey", "cd6797a1545702b6")
TRIGGER = ("trigger", 'public."患者"', '"患者_touch"', "6a45dc53e5f19dc9")
SEQUENCE = ("sequence", "", "public.receipt_no", "0123456789abcdef")


def test_the_same_schema_has_no_mismatch() -> None:
    assert compare_schema(_objects(PKEY, TRIGGER, SEQUENCE),
                          _objects(SEQUENCE, PKEY, TRIGGER)) == []


def test_a_missing_object_an_unexpected_one_and_another_definition_are_named_in_order(
        ) -> None:
    changed = (*TRIGGER[:3], "ffffffffffffffff")
    extra = ("index", "public.pgbench_accounts", "planted", "1111111111111111")
    assert compare_schema(_objects(PKEY, TRIGGER, SEQUENCE), _objects(changed, extra)) == [
        SchemaMismatch(*extra[:3], "unexpected"),
        SchemaMismatch(*PKEY[:3], "missing"),
        SchemaMismatch(*SEQUENCE[:3], "missing"),
        SchemaMismatch(*TRIGGER[:3], "definition")]


def test_names_only_leaves_definitions_alone_and_says_so() -> None:
    changed = (*TRIGGER[:3], "ffffffffffffffff")
    assert compare_schema(_objects(TRIGGER), _objects(changed), definitions=False) == []
    judged = judge_schema(_objects(PKEY, TRIGGER), _objects(changed),
                          names_only="dumped from PostgreSQL 13, restored on 15.18")
    assert judged == SchemaComparison(2, [SchemaMismatch(*PKEY[:3], "missing")], (
        "definitions not compared (dumped from PostgreSQL 13, restored on 15.18); names "
        "compared"))
    assert judge_schema(_objects(PKEY), _objects(changed)).mismatches == [
        SchemaMismatch(*PKEY[:3], "missing"), SchemaMismatch(*TRIGGER[:3], "unexpected")]


def test_a_backup_without_a_fingerprint_is_compared_on_rows_only_and_says_so() -> None:
    judged = judge_schema(None, _objects(PKEY))
    assert judged.checked is None and judged.mismatches == []
    assert judged.note == NO_FINGERPRINT and "compared on rows only" in NO_FINGERPRINT
    assert judge_schema([], []) == SchemaComparison(0, [], None)  # recorded: nothing there


# pg_restore --list of a dump with every kind the fingerprint records (PostgreSQL 15)
SCHEMA_TOC = """;
; Archive created at 2026-12-07 21:00:00 UTC
;
216; 1259 16390 TABLE public pgbench_accounts postgres
3211; 2606 16405 CONSTRAINT public pgbench_accounts pgbench_accounts_pkey postgres
3212; 2606 16406 CONSTRAINT public 患者 患者_pkey postgres
3215; 1259 16409 INDEX public 患者_名前 postgres
3216; 1259 16410 INDEX ATTACH public parted_1_k_idx postgres
3220; 2620 16411 TRIGGER my schema Odd Table touch it emr owner
3221; 2606 16412 FK CONSTRAINT public 患者 患者_branch_fkey postgres
220; 1259 16400 SEQUENCE public receipt_no postgres
3370; 0 16400 SEQUENCE SET public gone_seq postgres
"""


def test_the_quick_proof_finds_every_recorded_object_in_the_table_of_contents() -> None:
    schema = _objects(
        ("primary key", "public.pgbench_accounts", "pgbench_accounts_pkey", "0" * 16),
        ("primary key", 'public."患者"', '"患者_pkey"', "0" * 16),
        ("index", 'public."患者"', '"患者_名前"', "0" * 16),
        ("trigger", '"my schema"."Odd Table"', '"touch it"', "0" * 16),
        ("foreign key", 'public."患者"', '"患者_branch_fkey"', "0" * 16),
        ("sequence", "", "public.receipt_no", "0" * 16),
        ("check constraint", 'public."患者"', "inline_check", "0" * 16))  # no entry: skipped

    assert schema_not_in_toc(schema, SCHEMA_TOC) == (6, [])


def test_an_object_without_its_entry_is_named_not_in_the_dump() -> None:
    schema = _objects(
        ("primary key", "public.pgbench_tellers", "pgbench_tellers_pkey", "0" * 16),
        ("index", "public.parted_1", "parted_1_k", "0" * 16),  # only an INDEX ATTACH of another
        ("trigger", 'public."患者"', "touch", "0" * 16),
        ("sequence", "", "public.gone_seq", "0" * 16),  # only its SEQUENCE SET
        ("unique constraint", "public.pgbench_accounts", "pgbench_accounts", "0" * 16))

    looked, missing = schema_not_in_toc(schema, SCHEMA_TOC)

    assert looked == 5 and [m.reason for m in missing] == ["not in the dump"] * 5
    assert missing[0].describe("emr") == (
        "database emr, index parted_1_k of table public.parted_1: the dump holds no "
        "definition of it")
    assert [m.name for m in missing] == ["parted_1_k", "pgbench_tellers_pkey", "public.gone_seq",
                                         "touch", "pgbench_accounts"]
