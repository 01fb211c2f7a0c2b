"""validate's wording (issue 29, item 6): every pattern and constraint of the schema in the
docs' words, "did you mean" for misspelt keys."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from backupctl.config import wording
from backupctl.config.schema import GlobalConfig, Job
from backupctl.errors import ConfigError
from tests.unit.config.conftest import ConfigDir, valid_job

# JSON-schema keyword of a constraint → pydantic's error type when it is broken.
CONSTRAINTS = {"minLength": "string_too_short", "maxLength": "string_too_long",
               "minimum": "greater_than_equal", "maximum": "less_than_equal",
               "exclusiveMinimum": "greater_than", "exclusiveMaximum": "less_than",
               "minItems": "too_short", "maxItems": "too_long", "enum": "literal_error",
               "const": "literal_error"}


def _keywords(node: Any, found: dict[str, set[Any]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("pattern", *CONSTRAINTS) and not isinstance(value, dict):
                found.setdefault(key, set()).add(str(value))
            else:
                _keywords(value, found)
    elif isinstance(node, list):
        for value in node:
            _keywords(value, found)


def _schema_keywords() -> dict[str, set[Any]]:
    found: dict[str, set[Any]] = {}
    for model in (Job, GlobalConfig):
        _keywords(model.model_json_schema(mode="validation"), found)
    return found


def test_every_pattern_of_the_schema_has_a_phrase() -> None:
    patterns = _schema_keywords()["pattern"]
    assert patterns  # the walk found the job name's pattern at least
    assert patterns <= set(wording.PATTERNS), patterns - set(wording.PATTERNS)


def test_every_constraint_of_the_schema_has_a_phrase() -> None:
    used = set(_schema_keywords()) - {"pattern"}
    assert {"minLength", "minimum", "maximum"} <= used
    assert {CONSTRAINTS[k] for k in used} <= set(wording.TYPES)


@pytest.mark.parametrize(("error", "expected"), [
    ({"type": "string_pattern_mismatch", "msg": "String should match pattern '…'",
      "input": "EMR_DB", "ctx": {"pattern": r"^[a-z0-9][a-z0-9-]{0,62}$"}},
     "'EMR_DB' is not allowed: use lower-case letters, digits and '-', starting with a "
     "letter or digit, at most 63 characters (e.g. emr-db)"),
    ({"type": "greater_than_equal", "msg": "Input should be greater than or equal to 1",
      "input": 0, "ctx": {"ge": 1}}, "must be at least 1"),
    ({"type": "less_than_equal", "msg": "…", "input": 70000, "ctx": {"le": 65535}},
     "must be at most 65535"),
    ({"type": "literal_error", "msg": "Input should be 'offline' or 'immutable'",
      "input": "usb", "ctx": {"expected": "'offline' or 'immutable'"}},
     "'usb': must be one of 'offline', 'immutable'"),
    ({"type": "int_parsing", "msg": "Input should be a valid integer", "input": "x"},
     "must be a whole number"),
    ({"type": "value_error", "msg": "Value error, source path 'x' must be absolute",
      "input": "x"}, "source path 'x' must be absolute"),
    ({"type": "some_future_type", "msg": "pydantic's own words", "input": 1},
     "pydantic's own words"),
])
def test_phrase(error: Any, expected: str) -> None:
    assert wording.phrase(error) == expected


def test_a_long_value_is_shortened_in_the_message() -> None:
    error: Any = {"type": "string_pattern_mismatch", "msg": "", "input": "x" * 500,
                  "ctx": {"pattern": r"^[a-z0-9_-]{1,63}$"}}
    assert len(wording.phrase(error)) < 200


@pytest.mark.parametrize(("key", "known", "expected"), [
    ("exlude", ["paths", "exclude", "before", "after"], "exclude"),
    ("adress", ["address", "port", "user", "identity_file"], "address"),
    ("retention", ["job", "generations", "schedule"], None),  # nothing close: no guess
    ("zzz", [], None),
])
def test_did_you_mean(key: str, known: list[str], expected: str | None) -> None:
    assert wording.did_you_mean(key, known) == expected


def test_keys_at_follows_aliases_lists_and_optionals() -> None:
    assert set(wording.keys_at(Job, ["source"])) == {"paths", "exclude", "before", "after"}
    assert "job" in wording.keys_at(Job, [])  # the alias, as written in the file
    assert "max_age" in wording.keys_at(Job, ["copies", 0])
    assert "copy" in wording.keys_at(Job, ["schedule"])
    assert "password_holder" in wording.keys_at(Job, ["runbook"])
    assert wording.keys_at(Job, ["nope"]) == []
    assert wording.keys_at(Job, ["job"]) == []  # a string, not a mapping


class _Deep(BaseModel):
    inner: list[Job] | None = None


def test_keys_at_unwraps_optional_lists_of_models() -> None:
    assert "host" in wording.keys_at(_Deep, ["inner", 3])


def test_no_raw_pydantic_wording_reaches_validate(cfg: ConfigDir) -> None:
    """A job file with one mistake of each kind: every message is in backupctl's words."""
    text = (valid_job("EMR_DB")
            .replace("  address: local", "  address: local\n  port: 70000")
            .replace("  last: 7", "  last: 0\n  daily: many")
            .replace("    kind: offline", "    kind: usb")
            .replace("paths: [/srv/data]", "paths: []")
            + "tripwire:\n  changed_factor: 1\nverify:\n  always: /srv/data/x\n")
    cfg.write_job("a", text)
    with pytest.raises(ConfigError) as info:
        cfg.load()
    messages = info.value.messages
    assert len(messages) >= 7, messages
    for message in messages:
        assert "should" not in message and "Input" not in message, message
    assert any("must list at least 1 item(s)" in m for m in messages), messages
    assert any("must be a list" in m for m in messages), messages
