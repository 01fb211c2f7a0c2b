"""The words of notifications, ja and en (texts.yaml), and the one way to fill them in."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

LANGS = ("ja", "en")


@functools.cache
def _texts() -> dict[str, Any]:
    text = resources.files("backupctl.notify").joinpath("texts.yaml").read_text("utf-8")
    data: dict[str, Any] = YAML(typ="safe").load(text)
    return data


def t(lang: str, key: str, **params: object) -> str:
    """texts.yaml[lang][a][b]… for key `a.b`, formatted with `params`."""
    node: Any = _texts()[lang if lang in LANGS else "ja"]
    for part in key.split("."):
        node = node[part]
    return str(node).format(**params) if params else str(node)


def kind_label(lang: str, kind: str) -> str:
    labels: dict[str, str] = _texts()[lang]["kind"]
    return labels.get(kind, kind)


def duration(seconds: float | None, lang: str) -> str:
    """`2h05m`, `3d`, `45s` style (the same in both languages), `–` when unknown."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
