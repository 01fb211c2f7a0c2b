"""The runbook's recovery section: the exact commands onto a replacement server, ja and en."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupctl import runbook
from backupctl.config.schema import Copy, Database, Job
from backupctl.state.db import Store
from tests.unit.web.conftest import settings


def _job() -> Job:
    return Job.model_validate({
        "job": "fileserver", "host": {"address": "192.0.2.10", "user": "backupctl",
                                      "identity_file": "/etc/backupctl/id_ed25519"},
        "source": {"paths": ["/srv/files"]},
        "repository": {"url": "/var/backups/fileserver", "password_file": "/pw"},
        "generations": {"last": 7},
        "schedule": {"backup": "*-*-* 02:00:00", "verify": "Sun *-*-* 04:00:00"}})


@pytest.mark.parametrize(("lang", "fmt", "words"), [
    ("ja", "md", ("別のサーバへの復旧", "終了コード 3", "SHA-256")),
    ("en", "md", ("Recovery onto a replacement server", "Exit 3 means", "SHA-256")),
    ("ja", "html", ("別のサーバへの復旧", "終了コード 3", "SHA-256")),
    ("en", "html", ("Recovery onto a replacement server", "Exit 3 means", "SHA-256")),
])
def test_the_recovery_section_is_the_restore_command_with_the_jobs_values(
        tmp_path: Path, lang: str, fmt: str, words: tuple[str, ...]) -> None:
    config = settings(tmp_path, evidence_key=str(tmp_path / "no-key"))
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    text = runbook.runbook(config, store, _job(), lang=lang, fmt=fmt)
    to = "ssh://backupctl@NEW-SERVER/srv/restore/fileserver"
    cli = f"backupctl -c {config.path.resolve()}"
    trust = text.index(f"{cli} trust {to}")
    dry = text.index(f"{cli} restore fileserver --to {to} --dry-run")
    real = text.index(f"{cli} restore fileserver --to {to} --operator NAME")
    assert text.index(words[0]) < trust < dry < real
    drill_to = text.index(f"{cli} drill fileserver --to "
                          "ssh://backupctl@SPARE-SERVER/srv/restore/fileserver --operator NAME")
    assert real < drill_to and "--databases" not in text  # the job has no databases
    for word in words[1:]:
        assert word in text[real:], word


def test_the_recovery_section_restores_postgresql_databases_onto_the_new_server(
        tmp_path: Path) -> None:
    config = settings(tmp_path, evidence_key=str(tmp_path / "no-key"))
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    job = _job().model_copy(update={"databases": [Database(
        name="emr", kind="postgresql", dsn="host=/var/run/postgresql dbname=emr")]})
    text = runbook.runbook(config, store, job, lang="en", fmt="md")
    assert ("restore fileserver --to ssh://backupctl@NEW-SERVER/srv/restore/fileserver "
            "--databases --target-dsn 'host=/var/run/postgresql dbname=postgres' "
            "--operator NAME") in text
    assert "NAME_restored" in text


@pytest.mark.parametrize(("lang", "word"), [("ja", "不変コピーを優先"),
                                            ("en", "the immutable one first")])
def test_the_recovery_section_falls_back_to_the_immutable_copy(
        tmp_path: Path, lang: str, word: str) -> None:
    config = settings(tmp_path, evidence_key=str(tmp_path / "no-key"))
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    copies = [Copy.model_validate({"name": "usb", "kind": "offline", "password_file": "/pw",
                                   "url": "/mnt/usb/fileserver", "max_age": "7d"}),
              Copy.model_validate({"name": "cloud-worm", "kind": "immutable", "max_age": "2d",
                                   "url": "rest:https://worm.example/fs/",
                                   "password_file": "/pw"})]
    job = _job().model_copy(update={"copies": copies})
    text = runbook.runbook(config, store, job, lang=lang, fmt="md")
    to = "ssh://backupctl@NEW-SERVER/srv/restore/fileserver"
    real = text.index(f"restore fileserver --to {to} --operator NAME")
    fallback = text.index(f"restore fileserver --to {to} --from cloud-worm --operator NAME")
    assert real < fallback and f"--to {to} --from usb" not in text and word in text
