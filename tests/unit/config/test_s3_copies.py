"""S3 Object Lock copies in a job file (SPEC §14): keys that belong together, the
credentials file's permissions and lines, each a FILE:LINE: key problem (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupctl.config.validate import load_config
from backupctl.errors import ConfigError
from backupctl.status import ExitStatus
from tests.unit.config.conftest import ConfigDir, valid_job

SECRET = "cfg-s3-secret-Hn3Lq"
S3_COPY = """  - name: cloud
    kind: immutable
    url: s3:https://s3.ap-northeast-1.amazonaws.com/hospital/{name}
    password_file: {pw}
    max_age: 2d
"""


def s3_job(cfg: ConfigDir, name: str, extra: str) -> Path:
    text = valid_job(name).replace("schedule:\n", S3_COPY + extra + "schedule:\n")
    return cfg.write_job(name, text.replace("{name}", name))


def keys(cfg: ConfigDir, mode: int = 0o600, text: str | None = None) -> Path:
    path = cfg.root / "s3-keys"
    path.write_text(text if text is not None else
                    f"AWS_ACCESS_KEY_ID=AKIA\nAWS_SECRET_ACCESS_KEY={SECRET}\n")
    path.chmod(mode)
    return path


def problems(cfg: ConfigDir) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(cfg.config)
    assert info.value.status is ExitStatus.USAGE
    return info.value.messages


def test_a_complete_s3_copy_loads(cfg: ConfigDir) -> None:
    s3_job(cfg, "ok", f"    s3_credentials_file: {keys(cfg)}\n"
                      "    object_lock: {mode: compliance, min_days: 30}\n")
    copy = load_config(cfg.config).jobs["ok"].job.copies[1]
    assert copy.is_s3 and copy.object_lock is not None
    assert (copy.object_lock.min_days, copy.object_lock.extend_margin_days) == (30, 7)


def test_an_s3_copy_without_credentials_or_lock_is_refused(cfg: ConfigDir) -> None:
    path = s3_job(cfg, "nokeys", "    object_lock: {mode: compliance, min_days: 30}\n")
    assert any(p.startswith(f"{path}:") and "needs s3_credentials_file" in p
               for p in problems(cfg))
    path.unlink()
    s3_job(cfg, "nolock", f"    s3_credentials_file: {keys(cfg)}\n")
    assert any("needs object_lock" in p for p in problems(cfg))


def test_a_readable_credentials_file_is_refused_naming_the_key(cfg: ConfigDir) -> None:
    path = s3_job(cfg, "open", f"    s3_credentials_file: {keys(cfg, 0o644)}\n"
                               "    object_lock: {mode: governance, min_days: 7}\n")
    found = problems(cfg)
    assert any(p.startswith(f"{path}:") and "copies[1].s3_credentials_file" in p
               and "chmod 600" in p for p in found), found
    assert SECRET not in " ".join(found)


def test_a_credentials_file_with_a_stray_line_is_refused_without_its_value(
        cfg: ConfigDir) -> None:
    stray = keys(cfg, text="AWS_ACCESS_KEY_ID=a\n" + SECRET + "\n")
    s3_job(cfg, "stray", f"    s3_credentials_file: {stray}\n"
                         "    object_lock: {mode: compliance, min_days: 7}\n")
    found = problems(cfg)
    assert any("s3-keys:2: this line" in p for p in found) and SECRET not in " ".join(found)


def test_object_lock_needs_an_s3_url(cfg: ConfigDir) -> None:
    text = valid_job("local").replace("    max_age: 7d\n", "    max_age: 7d\n    object_lock: "
                                      "{mode: compliance, min_days: 7}\n")
    cfg.write_job("local", text)
    assert any("need an s3: url" in p for p in problems(cfg))
