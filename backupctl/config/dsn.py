"""Checks of a job's `databases:` entries that need more than a pattern: libpq connection
strings (no password inside) and extra pg_dump options (none that break the streamed dump).

Pure functions returning a message or None; the schema (config/schema.py) turns a message
into a validation error at the exact key.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

_URI_PREFIXES = ("postgresql://", "postgres://")
_WHERE_IT_BELONGS = ("the password never belongs in the job file: put it in ~/.pgpass of the "
                  "backup user on the host, or use peer authentication")


class ConninfoError(ValueError):
    """A connection string libpq would refuse."""


def conninfo_keywords(dsn: str) -> list[str]:
    """The keywords of a libpq `key=value ...` string (values may be single-quoted)."""
    keys: list[str] = []
    i, n = 0, len(dsn)
    while True:
        while i < n and dsn[i].isspace():
            i += 1
        if i >= n:
            return keys
        start = i
        while i < n and dsn[i] != "=" and not dsn[i].isspace():
            i += 1
        key = dsn[start:i]
        while i < n and dsn[i].isspace():
            i += 1
        if i >= n or dsn[i] != "=" or not key:
            raise ConninfoError(f"missing '=' after {key or dsn[start:start + 20]!r}")
        i += 1
        while i < n and dsn[i].isspace():
            i += 1
        if i < n and dsn[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise ConninfoError(f"unterminated quoted value of {key!r}")
                if dsn[i] == "\\":
                    i += 2
                    continue
                if dsn[i] == "'":
                    i += 1
                    break
                i += 1
        else:
            while i < n and not dsn[i].isspace():
                i += 2 if dsn[i] == "\\" else 1
        keys.append(key)


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
        if parts.password is not None or "password" in parse_qs(parts.query):
            return f"the connection URI contains a password; {_WHERE_IT_BELONGS}"
        return None
    if "=" not in dsn:
        return None  # a plain database name
    try:
        keys = conninfo_keywords(dsn)
    except ConninfoError as exc:
        return (f"not a libpq connection string ({exc}); write it as "
                "\"host=/var/run/postgresql dbname=emr user=backup\"")
    if "password" in keys:
        return f"the connection string contains password=; {_WHERE_IT_BELONGS}"
    return None


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
