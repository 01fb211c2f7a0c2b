"""The inspector's bundle: an AES-256 zip of a period's evidence, and checking one later.

Contents: `records.jsonl` (the period's contiguous slice of the chain, one record per line),
`chain.json` (the slice's predecessor and head, the database head at export time),
`report.pdf`, `report.html`, `report.json`, `README.txt`, and `SHA256SUMS` (sha256sum format)
over every other file. Every entry is WinZip AES-256 encrypted (pyzipper `WZ_AES`,
`nbits=256`): open it with 7-Zip, not Info-ZIP `unzip`. The password comes from a file or a
no-echo prompt, never from argv.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pyzipper

from backupctl import __version__
from backupctl.config.validate import Config
from backupctl.errors import BackupctlError
from backupctl.evidence import audit, chain, pin, render, report
from backupctl.evidence.period import Period, slice_for
from backupctl.execute import Secret
from backupctl.signing import Keyring, PublicKey
from backupctl.state.db import Store
from backupctl.status import ExitStatus

SCHEMA_ID = "backupctl-evidence-bundle/1"
SUMS = "SHA256SUMS"
PIN = "evidence.head"

README = """\
backupctl 監査証跡バンドル / audit evidence bundle

【日本語】
このファイルは AES-256 で暗号化された ZIP です。7-Zip で開いてください
（Windows 標準の展開機能や Info-ZIP の unzip では開けません）。
  7z t  FILE.zip           パスワードを入力して全ファイルの完全性を確認
  7z x  FILE.zip -oDIR     展開
  sha256sum -c SHA256SUMS  展開した各ファイルのハッシュを確認（DIR 内で実行）
report.pdf / report.html が報告書、records.jsonl が証跡記録（1行1記録、ハッシュチェーン）、
chain.json がチェーンの先頭ハッシュ、evidence.pub が署名の公開鍵（trusted-*.pub は
他のバックアップサーバの公開鍵）、evidence.head が署名付きの先頭ピンです。
backupctl がなくても、展開した DIR で
  sh verify-records.sh     （sha256sum・jq・openssl のみ使用）
が各記録のハッシュ・連鎖・署名・先頭ピンを検証し（改ざんは終了コード 3、証明できない
場合は 1）、公開鍵のフィンガープリントを表示します。
その値を、別経路で受け取ったフィンガープリントと照合してください。backupctl があれば
  backupctl evidence verify FILE.zip --password-file PWFILE
でパスワード・ハッシュ一覧・チェーン・署名をまとめて検証できます。

[English]
This is an AES-256 encrypted zip: open it with 7-Zip (Info-ZIP unzip cannot).
  7z t FILE.zip            enter the password; tests every file
  7z x FILE.zip -oDIR      extract
  sha256sum -c SHA256SUMS  check each extracted file (inside DIR)
report.pdf / report.html are the report, records.jsonl the evidence records (one per line,
hash-chained and signed), chain.json the chain's head, evidence.pub the signing public key
(trusted-*.pub: the other orchestrators' keys), evidence.head the signed head pin.
Without backupctl, inside DIR:
  sh verify-records.sh     (sha256sum, jq and openssl only)
checks every record's hash, the links, the signatures and the head pin (exit 3: forged,
1: cannot prove), and prints the keys' fingerprints: compare them with the fingerprints you
were given separately. With backupctl:
  backupctl evidence verify FILE.zip --password-file PWFILE
checks the password, the hash list, the chain and the signatures in one go.
"""


def _recipe() -> bytes:
    return resources.files("backupctl.evidence").joinpath(
        "inspector", "verify-records.sh").read_bytes()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Exported:
    path: Path
    count: int
    head: str
    fingerprint: str  # SHA-256 of SHA256SUMS: write it down next to the bundle
    chain_verified: bool
    status: ExitStatus = ExitStatus.OK  # of the database's check at export

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "records": self.count, "head": self.head,
                "fingerprint": self.fingerprint, "chain_verified": self.chain_verified}


def export(*, config: Config, store: Store, period: Period, lang: str, out: Path,
           password: Secret, now: datetime | None = None) -> Exported:
    entries = report.load(store)
    data = report.build(config=config, store=store, period=period, lang=lang,
                        entries=entries, now=now)
    piece = slice_for(entries, period)
    keys = audit.keyring(config)
    whole = audit.of_config(config, store, entries=entries)
    key = keys.own
    meta = {
        "schema": SCHEMA_ID,
        "backupctl_version": __version__,
        "exported_at": data["generated_at"],
        "period": data["period"],
        "first_seq": piece[0].seq if piece else None,
        "last_seq": piece[-1].seq if piece else None,
        "count": len(piece),
        # each line's seq: PostgreSQL sequences may skip numbers, so FIRST + n is not enough
        "seqs": [e.seq for e in piece],
        "prev_hash": str(piece[0].record["prev_hash"]) if piece else whole.check.head,
        "head": piece[-1].hash if piece else whole.check.head,
        "database": whole.to_dict(),
        "key_fingerprint": key.fingerprint if key else None,
        "trusted_keys": [k.fingerprint for k in keys.trusted],
    }
    files = {
        "records.jsonl": b"".join(chain.line(e.record) for e in piece),
        "chain.json": (json.dumps(meta, ensure_ascii=False, indent=2) + "\n").encode(),
        "report.json": render.render(data, "json"),
        "report.html": render.render(data, "html"),
        "report.pdf": render.render(data, "pdf"),
        "README.txt": README.encode("utf-8"),
        "verify-records.sh": _recipe(),
        **_keys(keys, pin.path_for(config.settings.evidence_key)),
    }
    sums = "".join(f"{_sha256(body)}  {name}\n" for name, body in sorted(files.items()))
    files[SUMS] = sums.encode()
    _write_zip(out, files, password)
    return Exported(path=out, count=len(piece), head=str(meta["head"]),
                    fingerprint=_sha256(files[SUMS]), chain_verified=whole.ok,
                    status=whole.status)


def _keys(keys: Keyring, pin_path: Path) -> dict[str, bytes]:
    """evidence.pub (the own key), trusted-HEX.pub (each trusted key, named by its raw
    key's SHA-256) and evidence.head (the head pin, when there is one)."""
    files = {"evidence.pub": keys.own.pem.encode()} if keys.own else {}
    for key in keys.trusted:
        if keys.own is None or key.fingerprint != keys.own.fingerprint:
            files[f"trusted-{hashlib.sha256(key.raw).hexdigest()[:16]}.pub"] = key.pem.encode()
    with contextlib.suppress(FileNotFoundError):
        files[PIN] = pin_path.read_bytes()
    return files


def _write_zip(out: Path, files: dict[str, bytes], password: Secret) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        with pyzipper.AESZipFile(tmp, "w", compression=pyzipper.ZIP_DEFLATED,
                                 encryption=pyzipper.WZ_AES) as zf:
            zf.setpassword(password.reveal().encode("utf-8"))
            zf.setencryption(pyzipper.WZ_AES, nbits=256)
            for name, body in files.items():
                zf.writestr(name, body)
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class WrongPassword(BackupctlError):
    """The bundle cannot be opened with the password given."""


@dataclass(frozen=True)
class BundleCheck:
    path: Path
    problems: list[str] = field(default_factory=list)  # what was changed or forged
    count: int = 0
    head: str | None = None
    fingerprint: str | None = None
    period: dict[str, Any] | None = None
    key_fingerprint: str | None = None  # the evidence key that signed the records
    unproven: list[str] = field(default_factory=list)  # what could not be checked

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unproven

    @property
    def status(self) -> ExitStatus:
        if self.problems:
            return ExitStatus.BAD_DATA
        return ExitStatus.FAILED if self.unproven else ExitStatus.OK

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "ok": self.ok, "problems": self.problems,
                "unproven": self.unproven, "records": self.count, "head": self.head,
                "fingerprint": self.fingerprint, "period": self.period,
                "key_fingerprint": self.key_fingerprint}


def verify(path: Path, password: Secret) -> BundleCheck:
    """Password, encryption, SHA256SUMS and the chain slice; every problem is listed."""
    try:
        contents, unencrypted = _read_zip(path, password)
    except (OSError, pyzipper.BadZipFile) as exc:
        raise BackupctlError(f"{path}: cannot read the bundle: {exc}") from None
    problems = [f"{name}: not AES-256 encrypted" for name in unencrypted]
    sums_raw = contents.get(SUMS)
    if sums_raw is None:
        return BundleCheck(path, [*problems, f"{SUMS} is missing"])
    listed: dict[str, str] = {}
    for number, line in enumerate(sums_raw.decode("utf-8", "replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            problems.append(f"{SUMS} line {number} is malformed")
            continue
        listed[name] = digest
    for name, digest in listed.items():
        if name not in contents:
            problems.append(f"{name}: listed in {SUMS} but missing from the bundle")
        elif _sha256(contents[name]) != digest:
            problems.append(f"{name}: modified (SHA-256 differs from {SUMS})")
    for name in sorted(set(contents) - set(listed) - {SUMS}):
        problems.append(f"{name}: not listed in {SUMS} (added after export)")
    fingerprint = _sha256(sums_raw)
    unproven: list[str] = []
    meta, count, head = _check_slice(contents, problems, unproven)
    return BundleCheck(path, problems, count=count, head=head, fingerprint=fingerprint,
                       period=meta.get("period") if meta else None,
                       key_fingerprint=meta.get("key_fingerprint") if meta else None,
                       unproven=unproven)


def _read_zip(path: Path, password: Secret) -> tuple[dict[str, bytes], list[str]]:
    contents: dict[str, bytes] = {}
    unencrypted: list[str] = []
    with pyzipper.AESZipFile(path) as zf:
        zf.setpassword(password.reveal().encode("utf-8"))
        for info in zf.infolist():
            # WinZip AES strength 3 = 256-bit; anything else is weaker or no encryption.
            if not (info.flag_bits & 0x1) or getattr(info, "wz_aes_strength", None) != 3:
                unencrypted.append(info.filename)
            try:
                contents[info.filename] = zf.read(info.filename)
            except RuntimeError as exc:
                if "password" in str(exc).lower():
                    raise WrongPassword(f"{path}: wrong password (cannot decrypt "
                                        f"{info.filename})") from None
                raise BackupctlError(f"{path}: cannot read {info.filename}: {exc}") from None
    return contents, unencrypted


def _check_slice(contents: dict[str, bytes], problems: list[str],
                 unproven: list[str]) -> tuple[dict[str, Any] | None, int, str | None]:
    """The records against chain.json, the keys, the head pin and the database's check at
    export: the same rules as `evidence verify --db` (rules.py), on the slice."""
    try:
        meta: dict[str, Any] = json.loads(contents["chain.json"])
        records = [json.loads(line) for line in
                   contents["records.jsonl"].decode("utf-8").splitlines() if line.strip()]
    except (KeyError, ValueError) as exc:
        problems.append(f"cannot read the records or chain.json: {exc}")
        return None, 0, None
    first = meta.get("first_seq") or 1
    seqs = meta.get("seqs") or [first + i for i in range(len(records))]
    if len(seqs) != len(records):
        problems.append(f"chain.json lists {len(seqs)} seqs for {len(records)} records")
        return meta, len(records), None
    entries = [chain.Entry(seq=int(n), record=r) for n, r in zip(seqs, records, strict=True)]
    keys = _bundle_keys(contents, meta, problems)
    pinned = _bundle_pin(contents, keys, problems, unproven)
    result = chain.check(entries, start=str(meta.get("prev_hash")), keys=keys,
                         first_signed=pinned.first_signed_seq if pinned else None)
    if result.problem is not None:
        (problems if result.problem.proven else unproven).append(
            f"records.jsonl: {result.problem.message}")
    if pinned is not None:
        problems += [f"records.jsonl: {p.message}"
                     for p in pin.compare(entries, pinned, whole=False)]
    if len(records) != meta.get("count"):
        problems.append(f"records.jsonl holds {len(records)} records, chain.json states "
                        f"{meta.get('count')}")
    if result.head != meta.get("head"):
        problems.append(f"records.jsonl ends at {result.head[:16]}…, chain.json states head "
                        f"{str(meta.get('head'))[:16]}…")
    _database(meta, problems, unproven)
    return meta, len(records), result.head


def _bundle_keys(contents: dict[str, bytes], meta: dict[str, Any],
                 problems: list[str]) -> Keyring:
    """evidence.pub (the exporting orchestrator's key, named in chain.json) and every other
    *.pub in the bundle (its trusted keys)."""
    own, trusted = None, []
    for name in sorted(n for n in contents if n.endswith(".pub") and "/" not in n):
        try:
            key = PublicKey.from_pem(contents[name])
        except ValueError as exc:
            problems.append(f"{name} is not an Ed25519 public key: {exc}")
            continue
        if name == "evidence.pub":
            own = key
        else:
            trusted.append(key)
    if own is not None and meta.get("key_fingerprint") not in (None, own.fingerprint):
        problems.append(f"evidence.pub ({own.fingerprint}) is not the key chain.json names "
                        f"({meta.get('key_fingerprint')})")
    return Keyring(own, tuple(trusted))


def _bundle_pin(contents: dict[str, bytes], keys: Keyring, problems: list[str],
                unproven: list[str]) -> pin.Pin | None:
    """The exporting orchestrator's head pin, when the bundle has one and it verifies."""
    if PIN not in contents:
        return None
    try:
        found = pin.parse(contents[PIN])
    except pin.PinError as exc:
        problems.append(f"{PIN}: not a head pin ({exc})")
        return None
    distrust = pin.trust_problem(found, keys.own, path=Path(PIN))
    if distrust is not None:
        (problems if distrust.proven else unproven).append(distrust.message)
        return None
    return found


def _database(meta: dict[str, Any], problems: list[str], unproven: list[str]) -> None:
    """The whole database's check when the bundle was exported (chain.json `database`)."""
    database = meta.get("database")
    if not isinstance(database, dict) or database.get("ok") is None:
        unproven.append("chain.json does not state the state database's check at export")
    elif database.get("ok") is not True:
        found = database.get("problem") or {}
        message = (f"the state database did not verify when the bundle was exported: "
                   f"{found.get('message') if isinstance(found, dict) else found}")
        (unproven if database.get("exit_code") == ExitStatus.FAILED else problems).append(
            message)
