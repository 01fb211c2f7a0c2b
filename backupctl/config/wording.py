"""What `validate` says instead of a library's raw message: one table of phrases for every
pattern and constraint of the schema (the words docs/config.md uses), and "did you mean"
for a misspelt key.

pydantic says `String should match pattern '^[a-z0-9][a-z0-9-]{0,62}$'`; an admin needs
`'EMR_DB': use lower-case letters, digits and '-', ...`. A pattern added to the schema
without a phrase here fails tests/unit/config/test_wording.py.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

# Every `pattern=` of backupctl.config (schema.py, notify.py) → what a valid value looks like.
PATTERNS: Mapping[str, str] = {
    r"^[a-z0-9][a-z0-9-]{0,62}$": (
        "use lower-case letters, digits and '-', starting with a letter or digit, at most "
        "63 characters (e.g. emr-db)"),
    r"^[a-z0-9_-]{1,63}$": "use lower-case letters, digits, '_' and '-', at most 63 characters",
    r"^[a-z_][a-z0-9_-]{0,31}$": (
        "use a system user name: lower-case letters, digits, '_' and '-', starting with a "
        "letter or '_', at most 32 characters (e.g. backupctl-restore)"),
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$": (
        "use a host name: letters, digits, '.', '_' and '-', starting with a letter or digit"),
}

# pydantic's error types → the phrase (placeholders: the error's ctx, e.g. {ge}).
TYPES: Mapping[str, str] = {
    "missing": "required key is missing",
    "extra_forbidden": "unknown key",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long: at most {max_length} characters",
    "too_short": "must list at least {min_length} item(s)",
    "too_long": "must list at most {max_length} item(s)",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "literal_error": "must be one of {expected}",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text (quote it if YAML reads it as a number, date or true/false)",
    "list_type": "must be a list ([a, b] or one '- item' per line)",
    "dict_type": "must be a mapping (key: value lines, indented under the key)",
    "model_type": "must be a mapping (key: value lines, indented under the key)",
    "model_attributes_type": "must be a mapping (key: value lines, indented under the key)",
    "path_type": "must be a file path",
}

_SHOWN = 60  # longest value quoted in a message


def _quoted(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 4] + "…" + text[-1]


def phrase(error: ErrorDetails) -> str:
    """The message of one pydantic error, in the docs' words."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error":  # our own validators already speak plainly
        return error["msg"].removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        advice = PATTERNS.get(pattern, f"it must match {pattern}")
        return f"{_quoted(error.get('input'))} is not allowed: {advice}"
    if kind == "literal_error":
        return f"{_quoted(error.get('input'))}: " + TYPES[kind].format(
            expected=str(ctx.get("expected", "")).replace("' or '", "', '"))
    template = TYPES.get(kind)
    if template is None:
        return error["msg"]
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return error["msg"]


def did_you_mean(key: str, known: Sequence[str]) -> str | None:
    """The known key closest to a misspelt one (difflib), or None."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return close[0] if close else None


def keys_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys a YAML mapping at `loc` may hold (field names as written: aliases)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # a list item: the list's element type was taken with the field
        fields = current.model_fields if _is_model(current) else {}
        info = next((f for name, f in fields.items() if (f.alias or name) == part), None)
        if info is None:
            return []
        current = _model_in(info.annotation)
        if current is None:
            return []
    if not _is_model(current):
        return []
    return [info.alias or name for name, info in current.model_fields.items()]


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside `X`, `X | None`, `list[X]`, `Annotated[X, ...]`."""
    if _is_model(annotation):
        return typing.cast(type[BaseModel], annotation)
    origin = typing.get_origin(annotation)
    if origin is None:
        return None
    if origin is typing.Annotated:
        return _model_in(typing.get_args(annotation)[0])
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if (found := _model_in(arg)) is not None:
                return found
    return None
