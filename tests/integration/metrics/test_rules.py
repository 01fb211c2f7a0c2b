"""The alert rules, unit-tested with the real `promtool test rules` (issue #6)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from backupctl.metrics.families import ALL
from tests.conftest import need

DOCS = Path(__file__).resolve().parents[3] / "docs" / "prometheus"
RULES = DOCS / "backupctl.rules.yml"
TESTS = DOCS / "backupctl.rules.test.yml"
CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def _alerts() -> list[dict[str, Any]]:
    data = _load(RULES)
    return [r for g in data["groups"] for r in g["rules"] if "alert" in r]


def _cases() -> list[dict[str, Any]]:
    data = _load(TESTS)
    return [c for t in data["tests"] for c in t["alert_rule_test"]]


def test_rules_are_valid() -> None:
    result = subprocess.run([need("promtool"), "check", "rules", str(RULES)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_tests_pass() -> None:
    result = subprocess.run([need("promtool"), "test", "rules", str(TESTS)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize("alert", [a["alert"] for a in _alerts()])
def test_every_alert_has_cases_that_fire_and_that_must_not(alert: str) -> None:
    cases = [c for c in _cases() if c["alertname"] == alert]
    assert any(c["exp_alerts"] for c in cases), f"{alert}: no case where it fires"
    assert any(not c["exp_alerts"] for c in cases), f"{alert}: no case where it must not fire"


@pytest.mark.parametrize("rule", _alerts(), ids=lambda r: str(r["alert"]))
def test_every_alert_has_severity_and_bilingual_text(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("critical", "warning")
    for key in ("summary", "description"):
        text = rule["annotations"][key]
        assert CJK.search(text), f"{rule['alert']}: {key} has no Japanese"
        words = re.findall(r"\b[A-Za-z]{2,}\b", re.sub(r"\{\{.*?\}\}", "", text))
        assert len(words) >= 3, f"{rule['alert']}: {key} has no English sentence"


def test_rules_use_only_metrics_backupctl_exposes() -> None:
    exposed = {spec.name for spec in ALL}
    used = set(re.findall(r"\bbackupctl_[a-z_]+", RULES.read_text()))
    assert used, "no metric found in the rules"
    assert used <= exposed, f"unknown metrics in rules: {sorted(used - exposed)}"
