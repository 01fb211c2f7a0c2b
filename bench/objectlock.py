"""Benchmark: the S3 Object Lock extension (actions/objectlock/extend.py) on a repository of
a few thousand objects, against moto's S3 server on loopback.

A bucket with COMPLIANCE default retention gets `--objects` objects laid out like a restic
repository (config, keys/, snapshots/, index/, data/xx/…, and a few locks/ that are never
extended). A share `--old` of them is made "old": its retention is set to end tomorrow
(moto accepts shortening; AWS would not, there the objects would simply be old). Then the
extension runs three times: a full pass that extends the old objects; the next copy, which
trusts the locks the first one saw (only the newest object is read: the daily steady
state); and a full pass with nothing to extend (what a copy costs once a margin, when the
known locks come within min_days). Prints objects read, S3 requests and time of each.

    .venv/bin/python bench/objectlock.py [--objects 3000] [--old 0.5]

On AWS each request is a network round trip (~10–30 ms from Japan to ap-northeast-1):
multiply the request count by it and divide by the 16 requests in flight.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from backupctl.actions.objectlock import client
from backupctl.actions.objectlock.extend import Known, extend
from backupctl.clock import parse_iso
from backupctl.config.schema import ObjectLock
from backupctl.execute import Secret
from backupctl.restic import s3
from backupctl.state.records import LockExtension
from tests.conftest import free_port
from tests.s3_server import KEY_ID, SECRET, S3Server, _wait


def layout(count: int) -> list[str]:
    """Keys shaped like a restic repository's (mostly packs)."""
    keys = ["config", "keys/" + "k" * 64, *(f"locks/{i:064x}" for i in range(3))]
    keys += [f"snapshots/{i:064x}" for i in range(max(1, count // 100))]
    keys += [f"index/{i:064x}" for i in range(max(1, count // 200))]
    while len(keys) < count:
        name = os.urandom(32).hex()
        keys.append(f"data/{name[:2]}/{name}")
    return keys


def fill(server: S3Server, bucket: str, keys: list[str], old: float) -> int:
    s3c: Any = server.client()
    server.bucket(bucket, mode="COMPLIANCE", days=30)
    soon = datetime.now(UTC) + timedelta(days=1)
    made_old = 0
    for number, key in enumerate(keys):
        put = s3c.put_object(Bucket=bucket, Key=f"repo/{key}", Body=b"x" * 64)
        if number < len(keys) * old and not key.startswith("locks/"):
            s3c.put_object_retention(Bucket=bucket, Key=f"repo/{key}",
                                     VersionId=put["VersionId"],
                                     Retention={"Mode": "COMPLIANCE", "RetainUntilDate": soon})
            made_old += 1
    return made_old


def run_once(server: S3Server, bucket: str, *, started: datetime,
             since: Known | None) -> tuple[LockExtension, float]:
    copy_url = server.url(bucket, "repo")
    s3.register(copy_url, s3.Credentials(Secret(KEY_ID), Secret(SECRET), "us-east-1"))
    bucket_client = client.Bucket(server.client(), s3.location(copy_url))
    began = time.monotonic()
    done = extend(bucket_client, ObjectLock(mode="compliance", min_days=30),
                  started=started, now=datetime.now(UTC), probe_prefix="backupctl-probe/",
                  known=since)
    return done.record, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=3000)
    parser.add_argument("--old", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        log = Path(tmp) / "moto.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                     "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait(port, proc, log)
            server = S3Server(port, proc)
            keys = layout(args.objects)
            started = datetime.now(UTC)  # the copy that uploaded them started here
            made_old = fill(server, "bench", keys, args.old)
            print(f"{len(keys)} objects ({made_old} locked until tomorrow, "
                  f"{sum(k.startswith('locks/') for k in keys)} locks), default retention "
                  "30 days, min_days 30, margin 7\n")
            print("| run | objects read | extended | S3 requests | time |\n|---|---|---|---|---|")
            known: Known | None = None
            for name in ("full pass, old objects extended", "next copy (previous locks known)",
                         "full pass, nothing to extend"):
                record, seconds = run_once(server, "bench", started=started, since=known)
                print(f"| {name} | {record.asked} | {record.extended} | {record.api_calls} "
                      f"| {seconds:.1f} s |")
                assert record.earliest is not None and not record.short
                known = Known(at=datetime.now(UTC), until=parse_iso(record.earliest)) \
                    if known is None else None
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
