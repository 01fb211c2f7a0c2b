"""The page's words (words.yaml, ja and en) and the one way to fill them in."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

from backupctl.fmt import lang_or_default


@functools.cache
def _words() -> dict[str, Any]:
    text = resources.files("backupctl.web").joinpath("words.yaml").read_text("utf-8")
    data: dict[str, Any] = YAML(typ="safe").load(text)
    return data


def words(lang: str) -> dict[str, Any]:
    """Every word of `lang` (an unknown language reads as Japanese)."""
    found: dict[str, Any] = _words()[lang_or_default(lang)]
    return found


def say(lang: str, key: str, **params: object) -> str:
    """words.yaml[lang][a][b] for key `a.b`, formatted with `params`."""
    node: Any = words(lang)
    for part in key.split("."):
        node = node[part]
    return str(node).format(**params) if params else str(node)
