"""The evidence keys: the keyring of accepted public keys and its trusted key files."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupctl.errors import UsageError
from backupctl.signing import Keyring, init_key, load_keyring, load_signer, public_path


def test_the_keyring_holds_the_own_key_first_and_each_trusted_key_once(tmp_path: Path) -> None:
    own = init_key(tmp_path / "a.key")
    other = init_key(tmp_path / "b.key")
    keys = load_keyring(tmp_path / "a.key", [public_path(tmp_path / "b.key"),
                                             public_path(tmp_path / "a.key")])
    assert [k.fingerprint for k in keys.accepted()] == [own.fingerprint, other.fingerprint]
    assert keys.get(other.fingerprint) == other and keys.get("SHA256:nope") is None
    signer = load_signer(tmp_path / "a.key")
    assert signer is not None and signer.path == tmp_path / "a.key"


def test_a_keyring_without_the_own_public_key_still_holds_the_trusted_ones(
        tmp_path: Path) -> None:
    other = init_key(tmp_path / "b.key")
    keys = load_keyring(tmp_path / "missing.key", [public_path(tmp_path / "b.key")])
    assert keys.own is None and keys.accepted() == [other]
    assert Keyring().accepted() == []


def test_a_trusted_key_file_that_is_not_a_key_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "junk.pub").write_text("junk\n")
    with pytest.raises(UsageError, match=r"junk\.pub is not an Ed25519 public key"):
        load_keyring(tmp_path / "a.key", [tmp_path / "junk.pub"])
    with pytest.raises(UsageError, match=r"gone\.pub cannot be read"):
        load_keyring(tmp_path / "a.key", [tmp_path / "gone.pub"])
