"""Make a test repository cheap to open: re-wrap its master key with a tiny scrypt cost.

restic calibrates scrypt at `init` to ~0.5 s of CPU, paid again at every restic start: in a
suite of thousands of restic invocations on 2 cores that is most of the run time. The key
file format is restic's documented one (design.md "Keys, Encryption and MAC"): the master
key JSON is AES-256-CTR encrypted and authenticated with Poly1305-AES under a key derived by
scrypt(password, salt, N, r, p). We decrypt it with the calibrated parameters once and write
it back under N=1024, r=8, p=1. Only test repositories get this; production repositories
keep restic's own calibration.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

CHEAP = {"N": 1024, "r": 8, "p": 1}


def _derive(password: bytes, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes, bytes]:
    key = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=64, maxmem=2**31 - 1)
    return key[:32], key[32:48], key[48:64]


def _clamp(r: bytes) -> bytes:
    out = bytearray(r)
    for i in (3, 7, 11, 15):
        out[i] &= 15
    for i in (4, 8, 12):
        out[i] &= 252
    return bytes(out)


def _mac(k: bytes, r: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    # Poly1305-AES: the one-time key half s = AES_k(nonce), a single block.
    aes = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    s = aes.update(iv) + aes.finalize()
    return Poly1305.generate_tag(_clamp(r) + s, ciphertext)


def _decrypt(keys: tuple[bytes, bytes, bytes], blob: bytes) -> bytes:
    enc, k, r = keys
    iv, ciphertext, tag = blob[:16], blob[16:-16], blob[-16:]
    if _mac(k, r, iv, ciphertext) != tag:
        raise ValueError("wrong password for the repository key")
    dec = Cipher(algorithms.AES(enc), modes.CTR(iv)).decryptor()
    return dec.update(ciphertext) + dec.finalize()


def _encrypt(keys: tuple[bytes, bytes, bytes], plain: bytes) -> bytes:
    enc, k, r = keys
    iv = os.urandom(16)
    aes = Cipher(algorithms.AES(enc), modes.CTR(iv)).encryptor()
    ciphertext = aes.update(plain) + aes.finalize()
    return iv + ciphertext + _mac(k, r, iv, ciphertext)


def cheapen(repo: Path, password: str) -> None:
    """Rewrite every key file of `repo` with the cheap scrypt parameters."""
    for key_file in list((repo / "keys").iterdir()):
        data = json.loads(key_file.read_text())
        salt = base64.b64decode(data["salt"])
        master = _decrypt(_derive(password.encode(), salt, data["N"], data["r"], data["p"]),
                          base64.b64decode(data["data"]))
        new_salt = os.urandom(64)
        wrapped = _encrypt(_derive(password.encode(), new_salt, CHEAP["N"], CHEAP["r"],
                                   CHEAP["p"]), master)
        data.update(CHEAP, salt=base64.b64encode(new_salt).decode(),
                    data=base64.b64encode(wrapped).decode())
        body = json.dumps(data).encode()
        key_file.unlink()
        # restic names files by the SHA-256 of their content.
        (repo / "keys" / hashlib.sha256(body).hexdigest()).write_bytes(body)
