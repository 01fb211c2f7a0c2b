"""A configuration directory on disk for validation tests: global config + job files as text.

Job files are written as literal YAML so the tests can assert exact line numbers.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from backupctl.config.validate import Config, load_config


@dataclass
class ConfigDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "backupctl.yaml"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def password_file(self) -> Path:
        return self.root / "secrets" / "pw"

    @property
    def identity_file(self) -> Path:
        return self.root / "id_ed25519"

    def write_config(self, text: str | None = None) -> Path:
        self.config.write_text(textwrap.dedent(text) if text is not None else (
            f"jobs_dir: {self.jobs_dir}\nstate_dir: {self.root / 'state'}\n"
            f"scratch_dir: {self.root / 'scratch'}\nknown_hosts: {self.root / 'known_hosts'}\n"))
        return self.config

    def write_job(self, name: str, text: str) -> Path:
        """Write jobs/NAME.yaml; `{pw}` and `{id}` stand for the existing secret files."""
        path = self.jobs_dir / f"{name}.yaml"
        body = textwrap.dedent(text).lstrip("\n")
        path.write_text(body.replace("{pw}", str(self.password_file))
                        .replace("{id}", str(self.identity_file)), encoding="utf-8")
        return path

    def load(self, *, strict: bool = False) -> Config:
        return load_config(self.config, strict=strict)


# A valid local job; line numbers matter to the tests that edit it.
VALID_JOB = """
job: {name}
description: テスト
host:
  address: local
source:
  paths: [/srv/data]
repository:
  url: /srv/restic/{name}
  password_file: {pw}
generations:
  last: 7
copies:
  - name: usb
    kind: offline
    url: /mnt/usb/{name}
    password_file: {pw}
    max_age: 7d
schedule:
  backup: "*-*-* 02:00:00"
  verify: "Sun *-*-* 04:00:00"
"""


def valid_job(name: str) -> str:
    return VALID_JOB.replace("{name}", name)


@pytest.fixture
def cfg(tmp_path: Path) -> ConfigDir:
    d = ConfigDir(tmp_path / "etc")
    d.jobs_dir.mkdir(parents=True)
    d.password_file.parent.mkdir()
    d.password_file.write_text("secret\n")
    d.password_file.chmod(0o600)
    d.identity_file.write_text("not really a key\n")
    d.identity_file.chmod(0o600)
    d.write_config()
    return d
