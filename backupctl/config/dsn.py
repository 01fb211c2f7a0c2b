"""Checks of connection strings that need more than a pattern: a job's `databases:` entries
(libpq connection strings, no password inside; extra pg_dump options that do not break the
streamed dump) and the global `database_url` (a URL without a password).

Pure functions returning a message or None; the schema (config/schema.py) or
config/validate.py turns a message into a validation error at the exact key. No message
quotes a value that could hold a password.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

_URI_PREFIXES = ("postgresql://", "postgres://")
_WHERE_IT_BELONGS = ("the password never belongs in the job file: put it in ~/.pgpass of the "
                  "backup user on the host, or use peer authentication")


class ConninfoError(ValueError):
    """A connection string libpq would refuse."""


def conninfo_keywords(dsn: str) -> list[str]:
    """The keywords of a libpq `key=value ...` string (values may be single-quoted)."""
    return [key for key, _ in conninfo_pairs(dsn)]


def conninfo_pairs(dsn: str) -> list[tuple[str, str]]:
    """The (keyword, value) pairs of a libpq `key=value ...` string, values unquoted."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(dsn)
    while True:
        while i < n and dsn[i].isspace():
            i += 1
        if i >= n:
            return pairs
        start = i
        while i < n and dsn[i] != "=" and not dsn[i].isspace():
            i += 1
        key = dsn[start:i]
        while i < n and dsn[i].isspace():
            i += 1
        if i >= n or dsn[i] != "=" or not key:
            # Said by its place, never quoted: the word may be a URI or a pasted password.
            raise ConninfoError(f"missing '=' after the word at character {start + 1}")
        i += 1
        while i < n and dsn[i].isspace():
            i += 1
        value: list[str] = []
        if i < n and dsn[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise ConninfoError(f"unterminated quoted value of {key!r}")
                if dsn[i] == "\\":
                    value.append(dsn[i + 1:i + 2])
                    i += 2
                    continue
                if dsn[i] == "'":
                    i += 1
                    break
                value.append(dsn[i])
                i += 1
        else:
            while i < n and not dsn[i].isspace():
                value.append(dsn[i + 1:i + 2] if dsn[i] == "\\" else dsn[i])
                i += 2 if dsn[i] == "\\" else 1
        pairs.append((key, "".join(value)))


def dsn_problem(kind: str, dsn: str) -> str | None:
    """Why `dsn` cannot be used for a database of `kind`, or None."""
    if kind == "sqlite":
        return None if dsn.startswith("/") else (
            f"a sqlite dsn is the absolute path of the database file, not {dsn!r}")
    if kind != "postgresql":
        return None
    if "\n" in dsn or "\0" in dsn:
        return "the connection string must be one line"
    if dsn.startswith(_URI_PREFIXES):
        parts = urlsplit(dsn)
        if parts.password is not None or any("password" in key.lower()
                                             for key in parse_qs(parts.query)):
            return f"the connection URI contains a password; {_WHERE_IT_BELONGS}"
        return None
    if "=" not in dsn:
        return None  # a plain database name
    try:
        keys = conninfo_keywords(dsn)
    except ConninfoError as exc:
        return (f"not a libpq connection string ({exc}); write it as "
                "\"host=/var/run/postgresql dbname=emr user=backup\"")
    if any("password" in key.lower() for key in keys):  # sslpassword= is one too
        return f"the connection string contains password=; {_WHERE_IT_BELONGS}"
    return None


_PGPASS = ("put the password in ~/.pgpass of the user running backupctl (or in the file "
           "PGPASSFILE names; mode 0600, a line host:port:database:user:password) and write "
           "the URL without it, e.g. postgresql://backupctl@db01/backupctl")


def database_url_problem(url: str) -> str | None:
    """Why `url` cannot be the global `database_url`, or None: a URL (sqlite:///PATH or
    postgresql://user@host/db?params) with no password in it. Never quotes `url`."""
    if "://" not in url:
        if "=" in url:  # a libpq key=value string: create_engine cannot read it
            try:
                keys = conninfo_keywords(url)
            except ConninfoError:
                keys = []
            extra = "; it holds password=: " + _PGPASS if "password" in keys else ""
            return ("database_url must be a URL (postgresql://user@host/db, or "
                    f"sqlite:///PATH), not a libpq key=value string{extra}")
        return "database_url must be a URL: postgresql://user@host/db or sqlite:///PATH"
    if database_url_secrets(url):
        return f"database_url holds a password; {_PGPASS}"
    return None


def database_url_secrets(url: str) -> list[str]:
    """Every password written inside `url` (user:PASSWORD@, ?password=), as written and
    percent-decoded: registered for masking before anything else can print the URL."""
    found: list[str] = []
    if "://" not in url:
        try:
            found = [value for key, value in conninfo_pairs(url) if key == "password"]
        except ConninfoError:
            found = [url] if "password" in url else []  # unparseable: all of it is secret
        return [v for v in dict.fromkeys(found) if v]
    netloc = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    if "@" in netloc:  # user:password@host (what urlsplit would take, without its checks)
        user_info = netloc.rsplit("@", 1)[0]
        found.append(user_info.split(":", 1)[1] if ":" in user_info else "")
    query = url.split("?", 1)[1] if "?" in url else ""
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if unquote(key) == "password":
            found.append(value)
    raw = [v for v in found if v]
    return list(dict.fromkeys([*raw, *(unquote(v) for v in raw)]))


# pg_dump 15's short options that take a value (its getopt string
# "abBcCd:e:E:f:F:h:j:n:N:Op:RsS:t:T:U:vwWxZ:").
_SHORT_WITH_VALUE = set("deEfFhjnNpStTUZ")
_FORBIDDEN_SHORT = {
    "f": "-f writes the dump to a file on the host; backupctl streams it into restic",
    "F": "-F changes the format; backupctl always dumps --format=custom",
    "j": "-j needs the directory format; backupctl streams one custom-format dump",
    "d": "-d names the database; put it in dsn",
    "h": "-h is a connection setting; put it in dsn (host=...)",
    "p": "-p is a connection setting; put it in dsn (port=...)",
    "U": "-U is a connection setting; put it in dsn (user=...)",
    "W": "-W would prompt for a password; use ~/.pgpass on the host",
    "V": "-V prints the version instead of dumping",
    "?": "-? prints help instead of dumping",
}
_FORBIDDEN_LONG = {
    "file": "--file writes the dump to a file on the host; backupctl streams it into restic",
    "format": "--format changes the format; backupctl always dumps --format=custom",
    "jobs": "--jobs needs the directory format; backupctl streams one custom-format dump",
    "dbname": "--dbname names the database; put it in dsn",
    "host": "--host is a connection setting; put it in dsn (host=...)",
    "port": "--port is a connection setting; put it in dsn (port=...)",
    "username": "--username is a connection setting; put it in dsn (user=...)",
    "password": "--password would prompt for a password; use ~/.pgpass on the host",
    "snapshot": "--snapshot is set by backupctl (rows are counted in the same snapshot)",
    "version": "--version prints the version instead of dumping",
    "help": "--help prints help instead of dumping",
}
# Long options that take a value (pg_dump 15-17): the value must be attached with `=`.
_LONG_WITH_VALUE = {
    "compress", "schema", "exclude-schema", "table", "exclude-table", "role", "section",
    "lock-wait-timeout", "exclude-table-data", "extra-float-digits", "rows-per-insert",
    "include-foreign-data", "superuser", "encoding", "table-and-children",
    "exclude-table-and-children", "exclude-table-data-and-children", "filter", "sync-method"}


def pg_dump_option_problem(option: str) -> str | None:
    """Why one `options` item cannot be passed to pg_dump, or None.

    Every item is one option with its value attached (`--exclude-table-data=NAME`,
    `-TNAME`): a bare word would become pg_dump's database argument.
    """
    if option in ("-", "--") or not option.startswith("-"):
        return (f"{option!r} is not an option; give each option with its value attached, "
                "e.g. --exclude-table-data=pgbench_history or -Tpattern")
    if "\0" in option or "\n" in option:
        return "an option must be one line"
    if option.startswith("--"):
        name = option[2:].split("=", 1)[0]
        for long, why in _FORBIDDEN_LONG.items():
            # getopt_long accepts any unambiguous prefix (--db=x is --dbname=x)
            if long.startswith(name):
                return why
        if name in _LONG_WITH_VALUE and "=" not in option:
            return (f"--{name} needs its value attached (--{name}=VALUE); a separate item "
                    "would be read as the database")
        return None
    for i, char in enumerate(option[1:], start=1):
        if char in _FORBIDDEN_SHORT:
            return _FORBIDDEN_SHORT[char]
        if char in _SHORT_WITH_VALUE:
            if i == len(option) - 1:
                return (f"-{char} needs its value attached (-{char}VALUE); a separate item "
                        "would be read as the database")
            break
    return None
