"""The words of notifications, ja and en (texts.yaml), and the one way to fill them in."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

from backupctl.fmt import lang_or_default


@functools.cache
def _texts() -> dict[str, Any]:
    text = resources.files("backupctl.notify").joinpath("texts.yaml").read_text("utf-8")
    data: dict[str, Any] = YAML(typ="safe").load(text)
    return data


def t(lang: str, key: str, **params: object) -> str:
    """texts.yaml[lang][a][b]… for key `a.b`, formatted with `params`."""
    node: Any = _texts()[lang_or_default(lang)]
    for part in key.split("."):
        node = node[part]
    return str(node).format(**params) if params else str(node)


def kind_label(lang: str, kind: str) -> str:
    labels: dict[str, str] = _texts()[lang_or_default(lang)]["kind"]
    return labels.get(kind, kind)
