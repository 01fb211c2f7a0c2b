"""Reports say why (issue 29): after one successful backup the first report said 要対応 next
to "newest backup succeeded"; the reason (fewer than two generations) is now in the
report, the management summary and the digest mail, in the same words. Real backup and
verify (restic), the real `report` command."""

from __future__ import annotations

import datetime
import json

from backupctl.evidence import reasons
from backupctl.notify.digest import compose
from tests.conftest import Workspace


def test_the_first_report_names_the_missing_generation_everywhere(
        workspace: Workspace) -> None:
    workspace.job("emr-files", generations={"last": 7})
    (workspace.root / "src" / "emr-files" / "karte.txt").write_text("カルテ\n")
    assert workspace.run("backup", "emr-files").returncode == 0
    assert workspace.run("verify", "emr-files").returncode == 0
    today = datetime.date.today().isoformat()

    for lang in ("ja", "en"):
        made = workspace.run("report", "--from", today, "--to", today, "--format", "json",
                             "--lang", lang)
        assert made.returncode == 0, made.stderr
        data = json.loads(made.stdout)
        why = reasons.generations(lang, 1, {"last": 7})
        assert why is not None
        backups = next(v for v in data["summary"]["verdicts"] if v["id"] == "backups")
        assert not backups["achieved"] and backups["reasons"] == [f"emr-files: {why}"]
        assert any(f["text"] == why for f in data["summary"]["findings"])  # the summary
        assert {"job": "emr-files", "text": why} in data["findings"]  # the inspector's report
        mail = compose(data, lang=lang, attached=False).body  # the digest
        assert f"    - emr-files: {why}" in mail
    assert why == "1 of 2 generations kept (policy: last 7)"

    page = workspace.run("report", "--from", today, "--to", today, "--format", "html",
                         "--summary")
    assert page.returncode == 0, page.stderr
    assert "理由: emr-files: 保持している世代は 2 世代必要なところ 1 世代です" in page.stdout
