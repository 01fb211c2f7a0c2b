"""docs/config.md documents every key of the schema, and only keys that exist."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from backupctl.config.schema import GlobalConfig, Job
from backupctl.config.values import Strict

DOC = Path(__file__).resolve().parents[3] / "docs" / "config.md"


def key_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """`host.port`, `copies[].max_age`, … for every field, using the YAML key (alias)."""
    paths = []
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        paths.append(path)
        for kind, is_list in _models_in(info.annotation):
            paths += key_paths(kind, path + ("[]." if is_list else "."))
    return paths


def _models_in(annotation: object, *, in_list: bool = False) -> list[tuple[type[Strict], bool]]:
    """Nested models of an annotation (through `X | None` and `list[X]`)."""
    if isinstance(annotation, type) and issubclass(annotation, Strict):
        return [(annotation, in_list)]
    is_list = typing.get_origin(annotation) is list
    found = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg, in_list=in_list or is_list)
    return found


def documented() -> set[str]:
    """Keys in the first column of the reference tables."""
    return set(re.findall(r"^\| `([a-z0-9_\[\].]+)` \|", DOC.read_text(), flags=re.MULTILINE))


def test_walker_finds_nested_and_aliased_keys() -> None:
    paths = key_paths(Job)
    assert {"host.port", "copies[].max_age", "schedule.copy", "verify.sample"} <= set(paths)


def test_every_schema_key_is_documented() -> None:
    missing = sorted(set(key_paths(Job) + key_paths(GlobalConfig)) - documented())
    assert missing == [], f"add these keys to {DOC}: {missing}"


def test_every_documented_key_exists() -> None:
    stale = sorted(documented() - set(key_paths(Job) + key_paths(GlobalConfig)))
    assert stale == [], f"{DOC} documents keys the schema does not have: {stale}"
