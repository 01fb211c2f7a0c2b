"""`report` (PDF/HTML/CSV/JSON) and `evidence export|verify FILE.zip` over real runs, checked
with the real tools an inspector uses: pdftotext, pdffonts, 7-Zip (issue #7 acceptance)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import jsonschema
import pytest
import pyzipper

from tests.conftest import PASSWORD, Workspace, need

from .conftest import Clone

SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "report.schema.json").read_text())
BUNDLE_PASSWORD = "Inspector-2026-bundle-pw"


def period() -> tuple[str, ...]:
    """From 2020 to today, read when the test runs (a run across midnight stays inside)."""
    return ("--from", "2020-01-01", "--to", date.today().isoformat())


@pytest.fixture(scope="module")
def pdf(evidence_ws: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pdf") / "report.pdf"
    result = evidence_ws.run("report", *period(), "--lang", "ja", "--format", "pdf", "-o",
                             str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_pdf_has_japanese_headings_descriptions_and_an_embedded_japanese_font(
        pdf: Path) -> None:
    need("pdftotext")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    for heading in ("バックアップ・復旧 監査証跡報告書", "未解決の指摘事項",
                    "サーバ（ジョブ）別の記録", "リストア試験", "要求事項との対応", "先頭ハッシュ"):
        assert heading in text, heading
    assert "電子カルテDBサーバ" in text and "画像サーバ PACS" in text
    assert "検証済み" in text
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True,
                           check=True).stdout
    japanese = [line for line in fonts.splitlines() if "IPAGothic" in line]
    assert japanese and all(" yes " in line for line in japanese), fonts


def test_pdf_renders_to_an_image(pdf: Path, tmp_path: Path) -> None:
    need("pdftoppm")
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf),
                    str(tmp_path / "page")], check=True)
    (page,) = tmp_path.glob("page*.png")
    assert page.read_bytes().startswith(b"\x89PNG") and page.stat().st_size > 5000


def test_html_is_well_formed(evidence_ws: Workspace) -> None:
    result = evidence_ws.run("report", *period(), "--lang", "en", "--format", "html")
    assert result.returncode == 0, result.stderr
    root = ET.fromstring(result.stdout)
    text = "".join(root.itertext())
    assert "Requirements evidenced" in text and "電子カルテDBサーバ" in text


def test_csv_has_bom_and_reads_with_the_csv_module(evidence_ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert evidence_ws.run("report", *period(), "--format", "csv", "-o", str(out)).returncode == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    emr = [r for r in rows if r["ジョブ"] == "emr-db"]
    assert sum(int(r["バックアップ実行数"]) for r in emr) == 2
    assert sum(int(r["リストア試験数"]) for r in emr) == 1
    assert sum(int(r["複製実行数"]) for r in emr) == 1


def test_json_validates_and_counts_real_runs(evidence_ws: Workspace) -> None:
    result = evidence_ws.run("report", *period(), "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    jobs = {j["job"]: j for j in data["jobs"]}
    emr = jobs["emr-db"]
    assert emr["totals"]["backups"] == 2 and emr["totals"]["restore_tests"] == 1
    (test,) = emr["restore_tests"]
    assert test["mode"] == "full" and test["result"] == "pass" and test["files_checked"] >= 1
    assert test["restore_seconds"] is not None and test["rto_seconds"] == 3600
    (usb,) = emr["copies"]
    assert usb["kind"] == "offline" and usb["runs"] == 1 and usb["medium"]
    assert usb["last_attached"]
    assert jobs["broken"]["totals"]["backups_failed"] == 1
    assert data["chain"]["verified"]


def test_report_on_a_broken_chain_says_so_and_exits_3(clone: Clone) -> None:
    clone.sql("UPDATE evidence SET operator = 'mallory' WHERE seq = 2")
    result = clone.run("report", *period(), "--format", "json")
    assert result.returncode == 3
    data = json.loads(result.stdout)
    assert not data["chain"]["verified"] and "seq 2" in data["findings"][0]["text"]


@pytest.fixture(scope="module")
def bundle(evidence_ws: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundle")
    pw = root / "bundle-pw"
    pw.write_text(BUNDLE_PASSWORD + "\n")
    out = root / "evidence.zip"
    result = evidence_ws.run("-v", "evidence", "export", *period(), "-o", str(out),
                             "--password-file", str(pw))
    assert result.returncode == 0, result.stderr
    assert BUNDLE_PASSWORD not in result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert "fingerprint" in result.stderr
    return out


def _pwfile(tmp_path: Path, password: str = BUNDLE_PASSWORD) -> Path:
    path = tmp_path / "pw"
    path.write_text(password + "\n")
    return path


def test_bundle_is_aes256_for_7zip(bundle: Path) -> None:
    need("7z")
    listing = subprocess.run(["7z", "l", "-slt", "-p", str(bundle)], capture_output=True,
                             text=True, input="\n", check=False).stdout
    methods = [line for line in listing.splitlines() if line.startswith("Method = ")]
    names = [line[7:] for line in listing.splitlines() if line.startswith("Path = ")][1:]
    assert set(names) == {"records.jsonl", "chain.json", "report.json", "report.html",
                          "report.pdf", "README.txt", "verify-records.sh", "SHA256SUMS"}
    assert methods and all("AES-256" in m for m in methods), methods


def test_7z_test_fails_with_a_wrong_password_and_passes_with_the_right_one(
        bundle: Path) -> None:
    wrong = subprocess.run(["7z", "t", str(bundle)], input="not-the-password\n",
                           capture_output=True, text=True, check=False)
    assert wrong.returncode != 0
    right = subprocess.run(["7z", "t", str(bundle)], input=BUNDLE_PASSWORD + "\n",
                           capture_output=True, text=True, check=False)
    assert right.returncode == 0, right.stdout
    assert "Everything is Ok" in right.stdout


def test_extracted_files_match_sha256sums(bundle: Path, tmp_path: Path) -> None:
    subprocess.run(["7z", "x", f"-o{tmp_path}", str(bundle)], input=BUNDLE_PASSWORD + "\n",
                   capture_output=True, text=True, check=True)
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    records = (tmp_path / "records.jsonl").read_text().splitlines()
    head = json.loads((tmp_path / "chain.json").read_text())["head"]
    assert json.loads(records[-1])["hash"] == head


def test_evidence_verify_accepts_the_bundle(evidence_ws: Workspace, bundle: Path,
                                            tmp_path: Path) -> None:
    result = evidence_ws.run("evidence", "verify", str(bundle), "--password-file",
                             str(_pwfile(tmp_path)), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    assert payload["ok"] and payload["records"] > 5


def test_evidence_verify_refuses_a_wrong_password(evidence_ws: Workspace, bundle: Path,
                                                  tmp_path: Path) -> None:
    result = evidence_ws.run("evidence", "verify", str(bundle), "--password-file",
                             str(_pwfile(tmp_path, "wrong-password-x")))
    assert result.returncode == 1 and "wrong password" in result.stderr


def test_evidence_verify_without_password_source_is_a_usage_error(
        evidence_ws: Workspace, bundle: Path) -> None:
    assert evidence_ws.run("evidence", "verify", str(bundle)).returncode == 2


def _rezip(source: Path, target: Path, change: dict[str, bytes]) -> None:
    with pyzipper.AESZipFile(source) as zin:
        zin.setpassword(BUNDLE_PASSWORD.encode())
        files = {name: zin.read(name) for name in zin.namelist()}
    files.update(change)
    with pyzipper.AESZipFile(target, "w", compression=pyzipper.ZIP_DEFLATED,
                             encryption=pyzipper.WZ_AES) as zout:
        zout.setpassword(BUNDLE_PASSWORD.encode())
        zout.setencryption(pyzipper.WZ_AES, nbits=256)
        for name, body in files.items():
            zout.writestr(name, body)


def _read(bundle: Path, name: str) -> bytes:
    with pyzipper.AESZipFile(bundle) as zf:
        zf.setpassword(BUNDLE_PASSWORD.encode())
        data: bytes = zf.read(name)
        return data


def test_a_modified_report_in_a_rezipped_bundle_is_detected(
        evidence_ws: Workspace, bundle: Path, tmp_path: Path) -> None:
    forged = tmp_path / "forged.zip"
    html = _read(bundle, "report.html").replace("不合格".encode(), "合格".encode())
    _rezip(bundle, forged, {"report.html": html + b"<!-- -->"})
    result = evidence_ws.run("evidence", "verify", str(forged), "--password-file",
                             str(_pwfile(tmp_path)))
    assert result.returncode == 3
    assert "report.html: modified" in result.stderr


def test_a_modified_record_with_updated_sums_is_detected(
        evidence_ws: Workspace, bundle: Path, tmp_path: Path) -> None:
    import hashlib

    lines = _read(bundle, "records.jsonl").decode().splitlines(keepends=True)
    record = json.loads(lines[1])
    record["result"] = "pass" if record["result"] == "fail" else "fail"
    lines[1] = json.dumps(record, ensure_ascii=False) + "\n"
    records = "".join(lines).encode()
    sums = _read(bundle, "SHA256SUMS").decode().splitlines()
    sums = [f"{hashlib.sha256(records).hexdigest()}  records.jsonl"
            if s.endswith("  records.jsonl") else s for s in sums]
    forged = tmp_path / "forged.zip"
    _rezip(bundle, forged, {"records.jsonl": records,
                            "SHA256SUMS": ("\n".join(sums) + "\n").encode()})
    result = evidence_ws.run("evidence", "verify", str(forged), "--password-file",
                             str(_pwfile(tmp_path)))
    assert result.returncode == 3
    assert "records.jsonl" in result.stderr and f"id {record['id']}" in result.stderr


def test_an_unencrypted_rezip_is_detected(evidence_ws: Workspace, bundle: Path,
                                          tmp_path: Path) -> None:
    forged = tmp_path / "plain.zip"
    with pyzipper.AESZipFile(bundle) as zin:
        zin.setpassword(BUNDLE_PASSWORD.encode())
        files = {name: zin.read(name) for name in zin.namelist()}
    with pyzipper.ZipFile(forged, "w") as zout:
        for name, body in files.items():
            zout.writestr(name, body)
    result = evidence_ws.run("evidence", "verify", str(forged), "--password-file",
                             str(_pwfile(tmp_path)))
    assert result.returncode == 3 and "not AES-256 encrypted" in result.stderr


def test_export_refuses_without_a_password_source(evidence_ws: Workspace,
                                                  tmp_path: Path) -> None:
    result = evidence_ws.run("evidence", "export", *period(), "-o", str(tmp_path / "x.zip"))
    assert result.returncode == 2 and not (tmp_path / "x.zip").exists()
