"""S3 repositories: where an `s3:` URL points, its credentials file, restic's environment.

restic reads S3 credentials only from its environment (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`). A copy's `s3_credentials_file` (0600,
owned by the user running backupctl) holds them as `NAME=value` lines; they reach restic
as a `SecretEnv` in its argv, which the local runner turns into the child's environment
(never a command line, never a log line: every value is a registered Secret).

`register(url, credentials)` ties a repository URL to its credentials once they are read
(actions/repo.py does it when it opens a copy), so every restic command built for that URL
(`commands.repository`) carries them, whichever action builds it.
"""

from __future__ import annotations

import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from backupctl.errors import BackupctlError, UsageError
from backupctl.execute import Secret, SecretEnv
from backupctl.secrets import read_private

KEY_ID = "AWS_ACCESS_KEY_ID"
SECRET_KEY = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 (a variable name, not a secret)
REGION = "AWS_DEFAULT_REGION"
SESSION_TOKEN = "AWS_SESSION_TOKEN"  # noqa: S105 (a variable name, not a secret)
ENDPOINT = "AWS_ENDPOINT_URL"  # optional: the probes' endpoint when the URL's differs
NAMES = (KEY_ID, SECRET_KEY, REGION, ENDPOINT)
DEFAULT_REGION = "us-east-1"  # what restic (minio-go) and boto3 assume without one


def is_s3(url: str) -> bool:
    return url.startswith("s3:")


@dataclass(frozen=True)
class Location:
    """`s3:https://host[:port]/bucket/prefix` (or `s3:host/bucket/prefix`, https)."""

    endpoint: str  # scheme://host[:port]
    bucket: str
    prefix: str  # without slashes at either end; "" for the bucket's root

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def shown(self) -> str:
        return f"s3:{self.endpoint}/{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")


def location(url: str) -> Location:
    """Where an `s3:` URL points; ValueError naming what is wrong."""
    rest = url.removeprefix("s3:")
    if not rest.startswith(("http://", "https://")):
        rest = "https://" + rest  # restic's own default for s3:host/bucket
    parts = urllib.parse.urlsplit(rest)
    if not parts.hostname:
        raise ValueError("an s3: URL needs a host: s3:https://HOST/BUCKET/PREFIX")
    if parts.username is not None or parts.query or parts.fragment or "#" in rest:
        raise ValueError("an s3: URL holds no credentials, query or fragment: put the keys "
                         "in s3_credentials_file")
    _port(parts)
    bucket, _, prefix = parts.path.strip("/").partition("/")
    if not bucket:
        raise ValueError("an s3: URL needs a bucket: s3:https://HOST/BUCKET/PREFIX")
    odd_prefix = bool(prefix) and any(p in ("", ".", "..") for p in prefix.split("/"))
    if odd_prefix or not bucket.isprintable() or " " in bucket:
        # restic cleans the prefix (path.Clean): the probe and the lock extension would
        # look at other keys than restic writes (a//b is a/b to restic)
        raise ValueError("the bucket and prefix are plain names: no spaces, no empty, '.' "
                         "or '..' parts (s3:https://HOST/BUCKET/DIR/SUBDIR)")
    return Location(f"{parts.scheme}://{parts.netloc}", bucket, prefix.strip("/"))


def _port(parts: urllib.parse.SplitResult) -> None:
    """A port that is not a number is refused without quoting it (it may be a misplaced
    secret: `host:SECRET@`)."""
    try:
        parts.port  # noqa: B018 (urllib checks the port only when asked)
    except ValueError:
        raise ValueError("the port after the host must be a number from 1 to 65535") from None


def _endpoint_problem(value: str) -> str | None:
    """AWS_ENDPOINT_URL: scheme://host[:port] only (botocore prints it in its errors)."""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be http(s)://HOST[:PORT]"
    if parts.username is not None or parts.query or parts.fragment or "#" in value:
        return "holds credentials, a query or a fragment: only http(s)://HOST[:PORT]"
    try:
        _port(parts)
    except ValueError as exc:
        return str(exc)
    return None


def _value(raw: str) -> str | None:
    """A line's value without one pair of matching quotes; None when it cannot be a key,
    region or endpoint (whitespace or control characters: an inline comment, a paste)."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if value[:1] in ("'", '"') or value[-1:] in ("'", '"') \
            or any(c.isspace() or not c.isprintable() for c in value):
        return None
    return value


@dataclass(frozen=True)
class Credentials:
    key_id: Secret
    secret_key: Secret
    region: str
    endpoint: str | None = None

    def env(self) -> SecretEnv:
        """restic's environment: the keys and the region (minio-go asks for one); a session
        token the orchestrator's own environment may hold is emptied (it belongs to other
        keys and would spoil these)."""
        return SecretEnv(((KEY_ID, self.key_id), (SECRET_KEY, self.secret_key),
                          (REGION, Secret(self.region)), (SESSION_TOKEN, Secret(""))),
                         label="s3 credentials")


def credentials_problem(path: Path) -> str | None:
    """Why `path` cannot be a credentials file (permissions, lines), or None."""
    try:
        read_credentials(path)
    except UsageError as exc:
        return str(exc)
    return None


def read_credentials(path: Path) -> Credentials:
    """The file's `NAME=value` lines (blank lines and `#` comments allowed); a problem is a
    usage error (exit 2) naming the file, the line and the name, never a value."""
    what = "s3_credentials_file"
    try:
        text = read_private(path, what).decode("utf-8-sig")  # an editor's byte order mark
    except BackupctlError as exc:
        raise UsageError(str(exc)) from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} cannot be read: not UTF-8 text") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.removeprefix("export ").partition("=")
        name = name.strip()
        if not equals or name not in NAMES:
            # A line without `=` may be a pasted key (letters and digits only): never shown.
            shown = name if equals and name.isidentifier() and "_" in name else "this line"
            raise UsageError(f"{path}:{number}: {shown}: not one of {', '.join(NAMES)} "
                             "(NAME=value lines)")
        if name in values:
            raise UsageError(f"{path}:{number}: {name}: given twice (one NAME=value line each)")
        found = _value(value)
        if found is None:
            raise UsageError(f"{path}:{number}: {name}: the value holds spaces, quotes that do "
                             "not match or control characters (no inline comments)")
        if name == ENDPOINT and found and (problem := _endpoint_problem(found)) is not None:
            raise UsageError(f"{path}:{number}: {name}: {problem}")
        values[name] = found
    missing = [n for n in (KEY_ID, SECRET_KEY) if not values.get(n)]
    if missing:
        raise UsageError(f"{path}: {', '.join(missing)} missing (NAME=value lines)")
    return Credentials(Secret(values[KEY_ID]), Secret(values[SECRET_KEY]),
                       values.get(REGION) or DEFAULT_REGION, values.get(ENDPOINT) or None)


_KNOWN: dict[str, Credentials] = {}
_FROM: dict[str, Path] = {}  # the file each registered URL's credentials were read from
_LOCK = threading.Lock()


def use(url: str, path: Path) -> Credentials:
    """The credentials for `url` from `path`, registered once. Another file for the same URL
    (two jobs' copies sharing a bucket prefix with other keys) is exit 2: restic commands
    are matched to their keys by URL, so one job would silently run with the other's."""
    with _LOCK:
        known, source = _KNOWN.get(url), _FROM.get(url)
        if known is not None and source is not None:
            if source != path:
                raise UsageError(f"{url}: s3_credentials_file {path} and {source} are both "
                                 "given for this URL; copies sharing a bucket prefix share "
                                 "one credentials file")
            return known
        found = read_credentials(path)  # a usage error naming the file and line
        _KNOWN[url], _FROM[url] = found, path
        return found


def register(url: str, credentials: Credentials) -> None:
    """restic commands for `url` carry these credentials from now on."""
    with _LOCK:
        _KNOWN[url] = credentials


def credentials_for(url: str) -> Credentials | None:
    with _LOCK:
        return _KNOWN.get(url)
