"""`backupctl runbook` (復旧手順書): content from the job and state; its plain-restic commands
really restore from the real repository and copy; no password anywhere."""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
from pathlib import Path

from tests.conftest import PASSWORD, Workspace

NAME = "emr-db"


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _setup(ws: Workspace) -> tuple[Path, Path]:
    """A backed-up job with an offline copy holding the same snapshot."""
    src = ws.root / "src" / NAME
    (src / "カルテ").mkdir(parents=True)
    (src / "カルテ" / "患者 001.txt").write_text("患者データ\n")
    (src / "emr.dump").write_bytes(b"\x00dump" * 1000)
    copy_repo = ws.new_repo("usb")
    ws.job(NAME, source=src, description="電子カルテDBサーバ",
           copies=[{"name": "usb", "kind": "offline", "url": str(copy_repo),
                    "password_file": str(ws.password_file("pw-usb")), "max_age": "7d"}],
           verify={"always": [str(src / "emr.dump")], "rto": "2h"},
           runbook={"steps": ["EMRサービスを起動する", "テスト患者のカルテを開いて表示を確認する"],
                    "contacts": ["情報システム課 山田 内線 1234"],
                    "password_holder": "事務長（金庫の封筒）"})
    result = ws.run("backup", NAME)
    assert result.returncode == 0, result.stderr
    pw = str(ws.password_file())
    subprocess.run(["restic", "--repo", str(copy_repo), "--password-file", pw, "copy",
                    "--from-repo", str(ws.root / "repos" / NAME), "--from-password-file", pw],
                   check=True, capture_output=True)
    return src, copy_repo


def _restic_commands(markdown: str) -> list[list[str]]:
    return [shlex.split(line.strip()) for line in markdown.splitlines()
            if line.strip().startswith("restic ")]


def test_japanese_runbook_has_servers_repositories_copies_and_no_password(
        workspace: Workspace) -> None:
    src, copy_repo = _setup(workspace)
    result = workspace.run("runbook", NAME, "--lang", "ja")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"# 復旧手順書: {NAME} — 電子カルテDBサーバ")
    for needed in ("local", str(src), str(workspace.root / "repos" / NAME), str(copy_repo),
                   "オフライン媒体", str(workspace.password_file()),
                   str(workspace.password_file("pw-usb")), "事務長（金庫の封筒）",
                   "1. [ ] EMRサービスを起動する",
                   "2. [ ] テスト患者のカルテを開いて表示を確認する",
                   "情報システム課 山田 内線 1234", f"verify {NAME} --mode full --from usb",
                   "目標復旧時間（RTO）: 2時間"):
        assert needed in text, needed
    assert re.search(r"最後に成功したバックアップ: \d{4}-\d\d-\d\d \d\d:\d\d", text)
    assert PASSWORD not in text + result.stderr


def test_plain_restic_commands_of_the_runbook_restore_from_repository_and_copy(
        workspace: Workspace, tmp_path: Path) -> None:
    src, copy_repo = _setup(workspace)
    text = workspace.run("runbook", NAME).stdout
    commands = _restic_commands(text)
    assert len(commands) == 8  # list, restore, restore one path, check × (primary, usb)
    assert {c[2] for c in commands} == {str(workspace.root / "repos" / NAME), str(copy_repo)}
    restores = 0
    for i, argv in enumerate(commands):
        assert argv[3] == "--password-file"
        target = tmp_path / f"restore{i}"
        if "--target" in argv:  # the runbook's example target → a test directory
            argv[argv.index("--target") + 1] = str(target)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (argv, done.stderr)
        if argv[5:7] == ["restore", "latest"]:
            restores += 1
            restored = target / src.relative_to("/")
            if "--include" in argv:
                assert _tree(restored) == {"emr.dump": _tree(src)["emr.dump"]}
            else:
                assert _tree(restored) == _tree(src)
        if argv[5] == "snapshots":
            assert NAME in done.stdout
    assert restores == 4


def test_english_html_runbook_is_escaped_and_written_to_a_file(workspace: Workspace,
                                                              tmp_path: Path) -> None:
    workspace.job("pacs", description="PACS <script>alert(1)</script>",
                  runbook={"steps": ["Open an image & compare"]})
    out = tmp_path / "runbook.html"
    result = workspace.run("runbook", "pacs", "--lang", "en", "--format", "html", "-o",
                           str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="en">' in html
    assert "Recovery runbook: pacs" in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "Open an image &amp; compare" in html
    assert "Last restore drill (drill)</th><td>none recorded" in html
    assert PASSWORD not in html


def test_runbook_of_an_unknown_job_or_language_is_a_usage_error(workspace: Workspace) -> None:
    workspace.job("a")
    assert workspace.run("runbook", "nope").returncode == 2
    assert workspace.run("runbook", "a", "--lang", "fr").returncode == 2


def test_runbook_times_are_in_the_configured_timezone(workspace: Workspace) -> None:
    import json
    from datetime import datetime
    from zoneinfo import ZoneInfo

    _setup(workspace)
    workspace.write_config(timezone="America/New_York")
    text = workspace.run("runbook", NAME, "--lang", "en").stdout
    stored = json.loads(workspace.run("status", "--json").stdout)["jobs"][0]["last_success_at"]
    local = datetime.fromisoformat(stored).astimezone(ZoneInfo("America/New_York"))
    assert local.strftime("%Y-%m-%d %H:%M %Z") in text  # EST or EDT, by the date
