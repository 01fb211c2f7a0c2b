"""restic/s3.py: s3: URLs, the credentials file, restic's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupctl.errors import UsageError
from backupctl.execute import SecretEnv
from backupctl.restic import commands, s3
from backupctl.restic.s3 import location, read_credentials

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def keys_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "s3-keys"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_urls_name_endpoint_bucket_and_prefix() -> None:
    where = location("s3:https://s3.ap-northeast-1.amazonaws.com/hospital-backup/emr-db/")
    assert (where.endpoint, where.bucket, where.prefix) == (
        "https://s3.ap-northeast-1.amazonaws.com", "hospital-backup", "emr-db")
    assert where.key("config") == "emr-db/config"
    assert location("s3:minio.local:9000/b").endpoint == "https://minio.local:9000"
    assert location("s3:http://127.0.0.1:9000/b/x/y").prefix == "x/y"
    for bad in ("s3:https://host/", "s3:https://key:secret@host/b/p"):
        with pytest.raises(ValueError):
            location(bad)


def test_a_credentials_file_gives_the_keys_and_a_default_region(tmp_path: Path) -> None:
    path = keys_file(tmp_path, f"# cloud\nAWS_ACCESS_KEY_ID=AKIA1\n"
                               f"export AWS_SECRET_ACCESS_KEY='{SECRET}'\n")
    found = read_credentials(path)
    assert found.key_id.reveal() == "AKIA1" and found.secret_key.reveal() == SECRET
    assert found.region == "us-east-1" and found.endpoint is None
    assert SECRET not in repr(found)


@pytest.mark.parametrize(("text", "mode", "said"), [
    ("AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY=" + SECRET + "\n", 0o644, "chmod 600"),
    ("AWS_ACCESS_KEY_ID=a\n", 0o600, "AWS_SECRET_ACCESS_KEY missing"),
    ("AWS_ACCESS_KEY_ID=a\nAWS_SECRET=" + SECRET + "\n", 0o600, ":2: AWS_SECRET: not one of"),
    (SECRET + "\n", 0o600, ":1: this line: not one of"),
])
def test_a_bad_credentials_file_is_a_usage_error_that_never_shows_a_value(
        tmp_path: Path, text: str, mode: int, said: str) -> None:
    with pytest.raises(UsageError) as caught:
        read_credentials(keys_file(tmp_path, text, mode))
    assert said in str(caught.value) and SECRET not in str(caught.value)
    assert str(tmp_path / "s3-keys") in str(caught.value)


PASTED = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"  # a secret key with no / or +: an identifier


@pytest.mark.parametrize("url", [
    f"s3:https://host/bucket/x#{PASTED}", f"s3:https://host:{PASTED}/bucket/x",
    f"s3:https://host/bucket/x?X-Amz-Signature={PASTED}", "s3:https://host/bucket/a//b",
    "s3:https://host/bucket/../x", "s3:https://host/bucket/a/./b", "s3:https://host/bu cket/x"])
def test_a_url_restic_would_read_otherwise_or_holding_a_secret_is_refused_unquoted(
        url: str) -> None:
    with pytest.raises(ValueError) as caught:
        location(url)
    assert PASTED not in str(caught.value)


@pytest.mark.parametrize(("text", "said"), [
    (f"AWS_ACCESS_KEY_ID=a\n{PASTED}\n", ":2: this line: not one of"),
    (f"AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY={PASTED}  # prod\n",
     ":2: AWS_SECRET_ACCESS_KEY: the value holds spaces"),
    (f"AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY=\"{PASTED}'\n", ":2: AWS_SECRET_ACCESS_KEY: "),
    (f"AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY={PASTED}\x00\n", ":2: AWS_SECRET_ACCESS_KEY"),
    (f"AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY=x\nAWS_SECRET_ACCESS_KEY={PASTED}\n",
     ":3: AWS_SECRET_ACCESS_KEY: given twice"),
    (f"AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY=x\nAWS_ENDPOINT_URL=https://u:{PASTED}@h/\n",
     ":3: AWS_ENDPOINT_URL: holds credentials"),
    ("AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY=x\nAWS_ENDPOINT_URL=minio:9000\n",
     ":3: AWS_ENDPOINT_URL: must be http(s)://HOST[:PORT]"),
])
def test_a_credentials_line_an_admin_got_wrong_names_line_and_key_never_the_value(
        tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(UsageError) as caught:
        read_credentials(keys_file(tmp_path, text))
    assert said in str(caught.value) and PASTED not in str(caught.value)


def test_crlf_lines_and_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    found = read_credentials(keys_file(
        tmp_path, f"\ufeffAWS_ACCESS_KEY_ID=a\r\nAWS_SECRET_ACCESS_KEY=\"{PASTED}\"\r\n"))
    assert (found.key_id.reveal(), found.secret_key.reveal()) == ("a", PASTED)


def test_commands_for_a_registered_url_carry_the_keys_in_the_environment(
        tmp_path: Path) -> None:
    url = "s3:https://s3.example.net/registered/repo"
    assert not any(isinstance(a, SecretEnv) for a in commands.repository(url))
    s3.register(url, read_credentials(keys_file(
        tmp_path, f"AWS_ACCESS_KEY_ID=AKIA2\nAWS_SECRET_ACCESS_KEY={SECRET}\n"
                  "AWS_DEFAULT_REGION=ap-northeast-1\n")))
    argv = commands.repository(url)
    env = [a for a in argv if isinstance(a, SecretEnv)]
    assert argv[:2] == ["--repo", url] and len(env) == 1
    assert {k: v.reveal() for k, v in env[0].values} == {
        "AWS_ACCESS_KEY_ID": "AKIA2", "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "ap-northeast-1", "AWS_SESSION_TOKEN": ""}
    assert SECRET not in " ".join(str(a) for a in argv)


def test_two_credentials_files_for_one_url_are_refused_naming_both(tmp_path: Path) -> None:
    """Two jobs' copies sharing a bucket prefix with other keys: restic commands find their
    keys by URL, so one job would run with the other's keys; exit 2 instead."""
    url = "s3:https://s3.example.net/shared/repo"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = keys_file(tmp_path / "a", f"AWS_ACCESS_KEY_ID=A\nAWS_SECRET_ACCESS_KEY={SECRET}\n")
    other = keys_file(tmp_path / "b", "AWS_ACCESS_KEY_ID=B\nAWS_SECRET_ACCESS_KEY=other\n")
    assert s3.use(url, first).key_id.reveal() == "A"
    assert s3.use(url, first).key_id.reveal() == "A"
    with pytest.raises(UsageError) as caught:
        s3.use(url, other)
    assert str(first) in str(caught.value) and str(other) in str(caught.value)
    assert SECRET not in str(caught.value)
    known = s3.credentials_for(url)
    assert known is not None and known.key_id.reveal() == "A"  # the first file's, kept
