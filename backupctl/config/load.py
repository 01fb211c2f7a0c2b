"""YAML loading that keeps line numbers, and mapping of pydantic errors to FILE:LINE: key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from backupctl.config import wording


@dataclass(frozen=True)
class Problem:
    """One configuration error: where it is and what is wrong."""

    file: Path
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        key = f" {self.key}:" if self.key else ""
        return f"{self.file}:{self.line}:{key} {self.message}"


@dataclass(frozen=True)
class Document:
    """A parsed YAML file with positions."""

    path: Path
    data: Any

    def line_of(self, loc: Sequence[str | int]) -> int:
        """1-based line of the deepest key of `loc` that exists in the document."""
        node = self.data
        line = 1
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                # A missing key: point at its parent's key (where it should be added).
                break
        return line

    def problem(self, loc: Sequence[str | int], message: str) -> Problem:
        return Problem(self.path, self.line_of(loc), key_path(loc), message)

    def problems_from(self, error: ValidationError,
                      model: type[BaseModel] | None = None) -> list[Problem]:
        """pydantic's errors in the docs' words (config.wording); an unknown key of `model`
        gets the closest known key as "did you mean"."""
        problems = []
        for item in error.errors():
            loc = [part for part in item["loc"] if not _is_pydantic_tag(part)]
            message = wording.phrase(item)
            if item["type"] == "extra_forbidden" and model is not None and loc:
                known = wording.keys_at(model, loc[:-1])
                if close := wording.did_you_mean(str(loc[-1]), known):
                    message += f"; did you mean {key_path([*loc[:-1], close])}?"
            problems.append(self.problem(loc, message))
        return problems


def _is_pydantic_tag(part: object) -> bool:
    # Union/function validators add tags such as "function-before[...]" to the location.
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def key_path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(path: Path) -> Document | Problem:
    """Parse one YAML file; a syntax error or a non-mapping top level is a Problem."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Problem(path, 1, "", f"cannot read file: {exc}")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        return Problem(path, line, "", f"invalid YAML: {exc.problem or exc.context}")
    except YAMLError as exc:
        return Problem(path, 1, "", f"invalid YAML: {exc}")
    if not isinstance(data, CommentedMap):
        return Problem(path, 1, "", "the file must contain a mapping of keys")
    return Document(path, data)


def plain(data: Any) -> Any:
    """ruamel's commented containers → plain dicts/lists (for pydantic)."""
    if isinstance(data, dict):
        return {str(k) if not isinstance(k, str) else k: plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data
