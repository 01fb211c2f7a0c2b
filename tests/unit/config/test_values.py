"""Small shared helpers of the configuration models."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from backupctl.config.values import named, repeated


@dataclass(frozen=True)
class _Item:
    name: str


def test_repeated_lists_each_name_given_more_than_once_sorted() -> None:
    assert repeated(["b", "a", "b", "c", "a", "b"]) == "a, b"
    assert repeated(["a", "b"]) == ""


def test_named_finds_the_item_or_raises_key_error() -> None:
    items = [_Item("a"), _Item("b")]
    assert named(items, "b") is items[1]
    with pytest.raises(KeyError):
        named(items, "c")
