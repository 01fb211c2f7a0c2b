"""The evidence key: Ed25519, kept outside the state database.

Every version-2 record's `hash` is signed with the private key (`evidence_key`, default
/etc/backupctl/evidence.key, 0600, made by `backupctl evidence init-key`); the public key
sits next to it (`evidence.key.pub`, PEM, readable) and is printed, with its fingerprint,
in every report, bundle and runbook. Someone who can write the database but cannot read
the private key cannot rewrite history: a record whose hash they recompute no longer
matches its signature.

Several orchestrators sharing one database each sign with their own key; a `Keyring` holds
the keys one orchestrator accepts: its own public key and `evidence_trusted_keys`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from backupctl.errors import BackupctlError, UsageError
from backupctl.secrets import read_private


def public_path(private: Path) -> Path:
    return private.with_name(private.name + ".pub")


@dataclass(frozen=True)
class PublicKey:
    key: Ed25519PublicKey

    @property
    def raw(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def pem(self) -> str:
        return self.key.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    @property
    def fingerprint(self) -> str:
        """`SHA256:` + base64 of SHA-256 of the raw 32-byte key (like OpenSSH's)."""
        digest = hashlib.sha256(self.raw).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def verify(self, record_hash: str, signature: str) -> bool:
        """Is `signature` (base64) the signature of the hex `record_hash` (its ASCII)?"""
        try:
            self.key.verify(base64.b64decode(signature, validate=True),
                            record_hash.encode("ascii"))
        except (InvalidSignature, binascii.Error, ValueError, UnicodeEncodeError):
            return False
        return True

    @classmethod
    def from_pem(cls, text: str | bytes) -> PublicKey:
        data = text.encode() if isinstance(text, str) else text
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return cls(key)


@dataclass(frozen=True)
class Keyring:
    """The public keys whose signatures are accepted: this orchestrator's own (None when its
    .pub file is missing: then its own records cannot be proven) and the trusted ones."""

    own: PublicKey | None = None
    trusted: tuple[PublicKey, ...] = ()

    def accepted(self) -> list[PublicKey]:
        """Every accepted key, the own one first, each once."""
        found: dict[str, PublicKey] = {}
        for key in (self.own, *self.trusted):
            if key is not None:
                found.setdefault(key.fingerprint, key)
        return list(found.values())

    def get(self, fingerprint: str) -> PublicKey | None:
        return next((k for k in self.accepted() if k.fingerprint == fingerprint), None)


def read_public(path: Path, *, what: str = "evidence public key") -> PublicKey:
    """An Ed25519 public key (PEM) from `path`; a bad or missing one is a usage error."""
    try:
        return PublicKey.from_pem(path.read_bytes())
    except OSError as exc:
        raise UsageError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{what} {path} is not an Ed25519 public key (PEM): {exc}") from None


def load_keyring(private: Path, trusted: Sequence[Path] = ()) -> Keyring:
    """The own public key (beside `private`) and the `evidence_trusted_keys` files."""
    return Keyring(load_public(private), tuple(
        read_public(p, what="evidence_trusted_keys: key") for p in trusted))


@dataclass(frozen=True)
class Signer:
    key: Ed25519PrivateKey
    path: Path | None = None  # where the private key lives (the head pin is beside it)

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key.public_key())

    def sign(self, record_hash: str) -> str:
        """The base64 Ed25519 signature of the hex hash's ASCII bytes."""
        return base64.b64encode(self.key.sign(record_hash.encode("ascii"))).decode()


def load_signer(path: Path) -> Signer | None:
    """The private key at `path`; None when there is none yet (records stay unsigned and
    `status`/`evidence verify` say so). A key others can read is refused (exit 2)."""
    if not path.exists():
        return None
    data = read_private(path, "evidence key")  # exit 2 when others could read it
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise BackupctlError(f"evidence key {path} cannot be read: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BackupctlError(f"evidence key {path} is not an Ed25519 key")
    return Signer(key, path)


def load_public(path: Path) -> PublicKey | None:
    """The public key next to the private key at `path` (readable without the secret)."""
    pub = public_path(path)
    try:
        return PublicKey.from_pem(pub.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BackupctlError(f"evidence public key {pub} cannot be read: {exc}") from None


def init_key(path: Path) -> PublicKey:
    """Make a new key pair at `path` (0600) and `path.pub` (0644); never replaces one."""
    if path.exists() or public_path(path).exists():
        raise UsageError(f"an evidence key already exists at {path}; it is never replaced "
                         "(records signed with it must keep verifying)")
    if not path.parent.is_dir():
        raise UsageError(f"directory {path.parent} does not exist; nothing was written")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public = Signer(key).public
    fd = os.open(public_path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(public.pem)
    os.chmod(public_path(path), 0o644)
    return public
