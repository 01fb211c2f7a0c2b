"""secrets.py: passwords inside URLs are found, hidden and kept off command lines."""

from __future__ import annotations

import pytest

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
