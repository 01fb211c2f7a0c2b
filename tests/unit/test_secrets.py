"""secrets.py: passwords inside URLs are found, hidden and kept off command lines."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from backupctl import secrets
from backupctl.errors import UsageError
from backupctl.restic.commands import repository
from backupctl.secrets import display_url, url_password


@pytest.mark.parametrize(("url", "password", "shown"), [
    ("rest:http://u:pw@h:8000/r/", "pw", "rest:http://u:***@h:8000/r/"),
    ("rest:http://:pw@h:8000/r/", "pw", "rest:http://:***@h:8000/r/"),  # no user name
    ("rest:http://h:8000/r/", None, "rest:http://h:8000/r/"),
    ("sftp://host:22/path@x", None, "sftp://host:22/path@x"),
    ("/srv/restic/emr-db", None, "/srv/restic/emr-db"),
])
def test_a_urls_password_is_found_and_hidden(url: str, password: str | None,
                                             shown: str) -> None:
    assert url_password(url) == password
    assert display_url(url) == shown


def test_a_url_with_only_a_password_goes_through_a_file_descriptor() -> None:
    argv = repository("rest:http://:pw@h:8000/r/")
    assert argv[0] == "--repository-file" and "pw" not in str(argv)


def test_a_file_swapped_for_a_fifo_after_its_check_is_refused_without_hanging(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path is checked, then opened: a FIFO put there in between would hang a plain
    read for ever (nobody writes to it); the read checks the descriptor it opened."""
    fifo = tmp_path / "password"
    os.mkfifo(fifo, 0o600)
    monkeypatch.setattr(secrets, "private_file_problem", lambda path, what: None)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            secrets.read_secret(fifo)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(20)
    assert not reader.is_alive(), "the read hung on a FIFO"
    [error] = outcome
    assert isinstance(error, UsageError) and "changed while it was opened" in str(error)


def test_a_file_made_readable_by_others_after_its_check_is_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password"
    secret.write_text("hunter2\n")
    secret.chmod(0o644)
    monkeypatch.setattr(secrets, "private_file_problem", lambda path, what: None)
    with pytest.raises(UsageError, match="changed while it was opened"):
        secrets.read_secret(secret)
    secret.chmod(0o600)
    assert secrets.read_secret(secret).reveal() == "hunter2"
