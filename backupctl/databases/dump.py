"""Backup side: one database dumped into the repository by one helper process on its host.

`dump_database` runs the stream helper (streamer_schema.py + streamer.py + streamer_modes.py,
started by helper.py) as `python3 -I -c SOURCE` in the kind's mode (`kinds.KINDS`) through
the job's Runner (SSH or local) and feeds it one JSON header on stdin, which carries the
repository password and URL (never argv, environment or the host's disk: the helper hands
both to restic through pipes, since a `rest:` URL can hold a password). The helper counts
every table's rows and takes the schema fingerprint (SPEC §10a) in the dump's own snapshot,
streams the dump into `restic backup --stdin` while hashing it, and answers with one JSON
line; nothing touches the host's disk.

Snapshots: each database is its own restic snapshot `/JOB.NAME.pgdump` (sqlite:
`/JOB.NAME.sqlite`, or `/JOB.NAME.sql` from a host whose python3 is older than 3.11; an
older backupctl made `/JOB/NAME.…`, read back by their recorded path), host
`JOB`, tags `backupctl-db` and `backupctl-db:NAME`. It never carries the plain `backupctl`
tag of the job's file snapshot, so `--tag backupctl` still selects exactly the file
snapshots, and `restic forget --group-by host,tags` keeps the generations of the files and
of each database apart (`--group-by host` would count them together). `restic copy --host
JOB` copies them like any other snapshot of the job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from backupctl.config.schema import Database
from backupctl.databases import model
from backupctl.databases.helper import PYTHON, helper_argv, helper_deadline, parse_reply
from backupctl.databases.kinds import KINDS
from backupctl.databases.model import DumpResult
from backupctl.databases.redact import redact
from backupctl.execute import Result, Runner, Secret
from backupctl.restic import parse, reach
from backupctl.restic.codes import ResticExit, classify
from backupctl.restic.run import hint
from backupctl.state.database_proof import SchemaObject


def header(database: Database, *, job: str, repo_url: str, password: Secret,
           deadline: float | None, pg_bin: str | None = None,
           restic_binary: str = "restic", restic_options: Sequence[str] = ()) -> bytes:
    """The helper's stdin: what to dump, where to, and the password."""
    return json.dumps({
        **({"restic_options": list(restic_options)} if restic_options else {}),
        "mode": KINDS[database.kind].HELPER_MODE, "dsn": database.dsn,
        "options": list(database.options),
        "repo": repo_url, "password": password.reveal(), "host": job,
        "tags": model.tags(database.name), "filename": model.dump_stem(job, database.name),
        "pg_bin": pg_bin, "restic": restic_binary, "deadline": deadline,
    }).encode()


def plan(database: Database, *, job: str, where: str) -> list[str]:
    """What a dump runs, for --dry-run (the helper's children, as it starts them)."""
    kind = KINDS[database.kind]
    helper = (f"on {where}: {PYTHON} -I -c <stream helper> (JSON header with the password and "
              "the repository on stdin)")
    backup = ("restic --repository-file /dev/fd/M --password-file /dev/fd/N backup --stdin "
              f"--stdin-filename {model.stdin_filename(job, database.name, kind.SUFFIX)} "
              f"--host {job} "
              + " ".join(f"--tag {t}" for t in model.tags(database.name)) + " --json")
    return [helper, *kind.dump_plan(database, backup)]


def dump_database(runner: Runner, database: Database, *, job: str, repo_url: str,
                  password: Secret, timeout: float | None, pg_bin: str | None = None,
                  restic_binary: str = "restic", python: str = PYTHON) -> DumpResult:
    """Dump one database into the repository on the runner's host; never raises for a
    failed dump (the result's `error` names the database and what failed)."""
    started = time.monotonic()
    base = model.DumpResult(job=job, name=database.name, kind=database.kind)
    if (silent := reach.silent_before(runner, repo_url)) is not None:
        return _failed(base, silent + hint(job, ResticExit.UNREACHABLE))
    deadline = helper_deadline(timeout)
    result = runner.run(helper_argv(python), timeout=timeout, stdin=header(
        database, job=job, repo_url=repo_url, password=password, deadline=deadline,
        pg_bin=pg_bin, restic_binary=restic_binary, restic_options=reach.options(runner)))
    seconds = time.monotonic() - started
    record = parse_reply(result)
    base = model.DumpResult(job=job, name=database.name, kind=database.kind, seconds=seconds)
    if record is None:
        return _failed(base, helper_failure(result, job=job, python=python))
    if not record.get("ok"):
        return _failed(base, describe_failure(record, job=job, host=result.host))
    return from_record(base, record, host=result.host)


def _failed(base: DumpResult, error: str) -> DumpResult:
    return DumpResult(job=base.job, name=base.name, kind=base.kind, seconds=base.seconds,
                      error=f"{base.job}: database {base.name}: {error}")


def helper_failure(result: Result, *, job: str, python: str) -> str:
    if result.returncode == 127 and not result.timed_out:
        return (f"{python} is not installed on {result.host} (the database dump helper needs "
                "python3 >= 3.6 there)")
    what = "timed out" if result.timed_out else f"exited {result.returncode}"
    detail = redact(result.stderr)
    return f"the dump helper on {result.host} {what} without a result" + (
        f": {detail}" if detail else "")


def describe_failure(record: dict[str, Any], *, job: str, host: str) -> str:
    """One message from the helper's failure record; row data is redacted."""
    stage, message = str(record.get("stage")), str(record.get("error"))
    detail = redact(parse.plain_stderr(str(record.get("stderr") or "")))
    text = f"{message} on {host}" + (f": {detail}" if detail else "")
    if record.get("deadline_expired"):
        text += "; the dump ran out of time (command_timeout)"
    if stage == "unreachable":  # the helper's retry watch stopped restic (streamer_watch)
        text += hint(job, ResticExit.UNREACHABLE)
    elif stage == "restic" and isinstance(record.get("returncode"), int):
        text += hint(job, classify(record["returncode"], str(record.get("stderr") or "")))
    if stage == "psql":
        text += ("\nCheck dsn and the backup user's access on the host (~/.pgpass or peer "
                 "authentication, SELECT on every table)")
    return text


def from_record(base: DumpResult, record: dict[str, Any], *, host: str) -> DumpResult:
    """A successful helper record as a DumpResult; an inconsistent one is a failure."""
    try:
        tables = {str(name): int(count) for name, count in record["tables"]}
        schema = (tuple(SchemaObject(*map(str, o)) for o in record["schema"])
                  if record.get("schema") is not None else None)
        size = int(record["size"])
        sha256 = str(record["sha256"])
        snapshot_id = parse.short_id(str(record["snapshot_id"]))
        suffix = str(record["suffix"])
    except (KeyError, TypeError, ValueError) as exc:
        return _failed(base, f"the dump helper on {host} answered an incomplete record ({exc})")
    stored = record.get("restic_bytes")
    if stored is not None and int(stored) != size:
        return _failed(base, f"restic stored {stored} bytes but the dump had {size} on {host}")
    server = record.get("server_version")
    return DumpResult(
        job=base.job, name=base.name, kind=base.kind, snapshot_id=snapshot_id,
        path=f"/{model.stdin_filename(base.job, base.name, suffix)}", sha256=sha256,
        size=size, tables=tables, schema=schema,
        server_version=int(server) if server else None,
        dump_version=str(record["dump_version"]) if record.get("dump_version") else None,
        seconds=base.seconds)
