"""cli/__init__.py: a command's start-up does not scan installed packages for pydantic
plugins (issue 25), unless the operator set PYDANTIC_DISABLE_PLUGINS otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = ("import backupctl.cli.main; from pydantic.plugin import _loader; "
        "print(_loader._plugins is None)")


def _scanned(env: dict[str, str]) -> bool:
    shown = subprocess.run([sys.executable, "-c", CODE], check=True, capture_output=True,
                           text=True, timeout=120, env=env).stdout.strip()
    return shown == "False"


def test_the_cli_builds_its_models_without_a_plugin_scan() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    assert not _scanned(env)


def test_the_operators_own_setting_is_kept() -> None:
    env = {**os.environ, "PYDANTIC_DISABLE_PLUGINS": "some-plugin"}
    assert _scanned(env)
