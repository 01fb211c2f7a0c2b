"""Dump test job files as YAML (ruamel, UTF-8, block style)."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML


def dump(data: Any) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()
