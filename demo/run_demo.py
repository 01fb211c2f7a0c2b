"""`make demo`: a real backupctl run on an embedded default, start to finish.

Creates everything under demo/work/ (wiped first): a global config with an SQLite state
database, two local restic repositories, one `host: local` job and one job over SSH to a
private sshd started on a loopback port (its host key trusted explicitly with
`backupctl trust --fingerprint`), whose repository is given as `local_url` only: backupctl
serves it to the server over the job's own SSH connection, append-only (docs/install.md).
The SSH job `emr-db` backs up a real PostgreSQL database
(a throwaway cluster the demo starts in demo/work/pg, Unix socket only, loaded with a few
tables of Japanese text): its dump is streamed into restic and its full verify restores it
into another throwaway server and compares every table. Then backup → copy → verify →
report → status, printing what happened; the status page (`backupctl exporter` on a free
loopback port) is reachable while the demo runs and its address is printed. Notifications: a
real SMTP server (aiosmtpd, its own process) writes every mail into demo/work/mail/; a third
job's backup fails on purpose (its `before` hook finds the laboratory export unfinished) and
the demo shows the Japanese mail that arrived, then the recovery mail, and writes the
one-page management summary (PDF). The worst day: a second sshd on loopback (its own
directory demo/work/ssh-new, its own host key and authorized key) plays the replacement
server; its host key is trusted, the `fileserver` job is recovered onto it with `backupctl
restore` (the repository served over the SSH connection) and the proof's summary is printed.
Both sshds, the SMTP server, the exporter and the PostgreSQL
cluster are stopped at the end.

Two PostgreSQL servers run as other users: the EMR's own (as `postgres` when the demo runs
as root) and the restore test's throwaway server (as `restore_user`, `backupctl-restore`,
which `make install` creates: a dump is hostile input, docs/install.md). Both must pass
through every parent of their directories, and a checkout often sits in a 0700 home: so the
EMR's cluster and scratch_dir live in a 0711 directory under /var/tmp made by the demo
(traversable, not listable) and wiped at the end; everything else stays in demo/work/.
"""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
BACKUPCTL = [sys.executable, "-m", "backupctl", "-c", str(WORK / "backupctl.yaml")]
AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
# The EMR database: patients, chart notes and lab results (fictitious, Japanese text).
EMR_SQL = """
CREATE TABLE 患者 (id int PRIMARY KEY, 氏名 text NOT NULL, 生年月日 date, 診療科 text);
INSERT INTO 患者 SELECT i, '患者' || lpad(i::text, 4, '0'),
       date '1940-01-01' + (i * 37) % 25000, (ARRAY['内科','外科','小児科','整形外科'])[1 + i % 4]
FROM generate_series(1, 2000) i;
CREATE TABLE カルテ (id bigserial PRIMARY KEY, 患者id int REFERENCES 患者, 記載日 date,
                    記載 text);
INSERT INTO カルテ (患者id, 記載日, 記載) SELECT 1 + i % 2000, date '2025-01-01' + i % 300,
       '経過良好。内服継続。' || repeat('所見なし。', 1 + i % 5) FROM generate_series(1, 6000) i;
CREATE TABLE 検査結果 (id bigserial PRIMARY KEY, 患者id int REFERENCES 患者, 項目 text,
                      値 numeric);
INSERT INTO 検査結果 (患者id, 項目, 値) SELECT 1 + i % 2000,
       (ARRAY['HbA1c','AST','ALT','CRP'])[1 + i % 4], (i % 97) / 10.0
FROM generate_series(1, 4000) i;
"""


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    print("$ backupctl " + " ".join(args), flush=True)
    result = subprocess.run([*BACKUPCTL, *args], text=True, capture_output=True)
    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    print(f"(exit {result.returncode})", flush=True)
    if check and result.returncode != 0:
        raise SystemExit(f"demo failed: backupctl {' '.join(args)} exited {result.returncode}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)


def start_sshd(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A private OpenSSH server on loopback that accepts only the demo's key."""
    root.mkdir(mode=0o700)
    keygen(root / "host_key")
    keygen(root / "id_ed25519")
    shutil.copy(root / "id_ed25519.pub", root / "authorized_keys")
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_key\n"
        f"PidFile {root}/sshd.pid\nAuthorizedKeysFile {root}/authorized_keys\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    subprocess.run([sshd, "-t", "-f", str(config)], check=True)
    proc = subprocess.Popen([sshd, "-D", "-f", str(config), "-E", str(root / "sshd.log")])
    return proc, wait_for(port, f"sshd did not start; see {root}/sshd.log")


def recover_onto_replacement() -> subprocess.Popen[bytes]:
    """The worst day in small: a second sshd (the rebuilt server), its host key trusted by
    fingerprint, a plan, then `restore fileserver` onto it and the proof's summary."""
    root = WORK / "ssh-new"
    sshd, port = start_sshd(root)
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(root / "host_key.pub")], check=True,
                                 text=True, capture_output=True).stdout.split()[1]
    user = os.environ.get("USER", "root")
    to = f"ssh://{user}@127.0.0.1:{port}{WORK}/replacement/files"
    run("trust", to, "--fingerprint", fingerprint)
    run("restore", "fileserver", "--to", to, "--dry-run")
    result = run("restore", "fileserver", "--to", to, "--identity", str(root / "id_ed25519"),
                 "--operator", "山田", "--json")
    (job,) = json.loads(result.stdout)["jobs"]
    d = job  # the details are the job entry's own keys
    say(f"proof on the replacement server: {d.get('result')} — {d.get('files')} file(s), "
        f"{d.get('files_checked')} hashed against the source manifest, "
        f"{len(d.get('mismatches') or [])} difference(s), "
        f"{(d.get('restore_ms') or 0) / 1000:.1f}s from start to a proven target")
    return sshd


def wait_for(port: int, failure: str) -> int:
    """The port, once something accepts connections on it (else exit with `failure`)."""
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return port
        except OSError:
            time.sleep(0.05)
    raise SystemExit(failure)


def start_smtp(maildir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """aiosmtpd in its own process, delivering every message into a Maildir."""
    port = free_port()
    log = (WORK / "smtp.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                             "-c", "aiosmtpd.handlers.Mailbox", str(maildir)],
                            stdout=log, stderr=subprocess.STDOUT)
    return proc, wait_for(port, f"the SMTP server did not start; see {WORK}/smtp.log")


def start_exporter() -> tuple[subprocess.Popen[bytes], str]:
    """`backupctl exporter` on a free loopback port: the status page, until the demo ends."""
    port = free_port()
    log = (WORK / "exporter.log").open("wb")
    proc = subprocess.Popen([*BACKUPCTL, "exporter", "--listen", f"127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    wait_for(port, f"the exporter did not start; see {WORK}/exporter.log")
    return proc, f"http://127.0.0.1:{port}/"


def page_verdict(url: str) -> str:
    """The status page's first line (its verdict for the site), as a reader sees it."""
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (loopback)
        page = response.read().decode()
    found = re.search(r'id="verdict"[^>]*>(.*?)</p>', page, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip() if found else "(no verdict)"


def _arrival(key: str) -> tuple[int, ...]:
    """Maildir file names start SECONDS.M<micro>P<pid>Q<count>: the order of delivery."""
    return tuple(int(n) for n in re.findall(r"\d+", key)[:4])


def show_mail(maildir: Path, already: int) -> int:
    """Print the mails that arrived after the first `already` (subject and first lines)."""
    box = mailbox.Maildir(maildir, factory=None, create=False)
    keys = sorted(box.keys(), key=_arrival)
    for key in keys[already:]:
        mail = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        part = mail.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        print(f"  --- mail to {mail['To']}\n  Subject: {mail['Subject']}")
        for line in text.splitlines()[:9]:
            print(f"  | {line}")
    return len(keys)


def add_failing_job() -> Path:
    """Job `lab`: its `before` hook needs the laboratory system's nightly export to be done."""
    lab = WORK / "data" / "lab"
    lab.mkdir(parents=True)
    (lab / "results.csv").write_text("検体番号,項目,値\n0001,CRP,0.3\n")
    (WORK / "jobs" / "lab.yaml").write_text(f"""\
job: lab
description: 検査システム（結果エクスポート）
host:
  address: local
source:
  paths: ["{lab}"]
  before: ["test -e '{lab}/export-done'"]
repository:
  url: {WORK}/repos/lab
  password_file: ../secrets/files
  init: true
generations:
  last: 7
schedule:
  backup: "*-*-* 01:00:00"
  verify: "Sun *-*-* 05:30:00"
""")
    return lab / "export-done"


def make_data() -> None:
    (WORK / "data").mkdir(mode=0o700)
    emr = WORK / "data" / "emr"
    files = WORK / "data" / "files" / "スキャン"
    emr.mkdir(parents=True)
    files.mkdir(parents=True)
    (emr / "電子カルテ設定.conf").write_text("server=emr01\nport=8080\n")
    for i in range(40):
        (files / f"スキャン {i:03d}.pdf").write_bytes(os.urandom(32 * 1024))
    (WORK / "data" / "files" / "a'b\"c; $(echo oops).txt").write_text("quoted name\n")


def pg_bin() -> Path:
    versions = sorted((int(p.name), p / "bin") for p in Path("/usr/lib/postgresql").iterdir()
                      if p.name.isdigit() and (p / "bin" / "initdb").exists())
    if not versions:
        raise SystemExit("the demo needs PostgreSQL (make install installs it)")
    return versions[-1][1]


def start_postgres(root: Path) -> int:
    """The EMR's database server: a throwaway cluster on a Unix socket only."""
    root.mkdir(mode=0o700)
    if AS_POSTGRES:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    bindir = pg_bin()
    subprocess.run([*AS_POSTGRES, str(bindir / "initdb"), "-D", str(root / "data"), "-A",
                    "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"],
                   check=True, capture_output=True, cwd="/")
    subprocess.run([*AS_POSTGRES, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-w", "-s",
                    "-l", str(root / "server.log"), "-o",
                    f"-c listen_addresses='' -c port={port} -c unix_socket_directories='{root}'"
                    " -c fsync=off", "start"], check=True, cwd="/")  # the checkout may be 0700
    psql = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(root), "-p",
            str(port), "-U", "postgres"]
    subprocess.run([*psql, "-d", "postgres", "-c", "CREATE DATABASE emr TEMPLATE template0 "
                    "ENCODING 'UTF8' LOCALE 'C'"], check=True)
    subprocess.run([*psql, "-d", "emr"], input=EMR_SQL, text=True, check=True)
    return port


def stop_postgres(root: Path) -> None:
    if (root / "data" / "postmaster.pid").exists():
        subprocess.run([*AS_POSTGRES, str(pg_bin() / "pg_ctl"), "-D", str(root / "data"),
                        "-m", "fast", "-w", "-s", "stop"], check=False, cwd="/")


def make_outside() -> Path:
    """A 0711 directory the PostgreSQL users can pass through, wherever the checkout is."""
    outside = Path(tempfile.mkdtemp(prefix="backupctl-demo-", dir="/var/tmp"))
    outside.chmod(0o711)
    return outside


def write_config(port: int, pg_port: int, smtp_port: int, outside: Path) -> None:
    secrets = WORK / "secrets"
    secrets.mkdir(mode=0o700)
    for name in ("files", "emr", "emr-usb"):
        (secrets / name).write_text(os.urandom(24).hex() + "\n")
        (secrets / name).chmod(0o600)
    (WORK / "jobs").mkdir()
    scratch = outside / "scratch"
    scratch.mkdir()
    scratch.chmod(0o711)  # the restore user passes through to its own directories inside
    (WORK / "backupctl.yaml").write_text(
        f"jobs_dir: jobs\nstate_dir: state\nscratch_dir: {scratch}\n"
        "known_hosts: ssh/known_hosts\nconcurrency: 2\n"
        "evidence_key: secrets/evidence.key\nevidence_anchor_file: evidence.anchors\n"
        "notify:\n  language: ja\n  channels:\n    - name: it-mail\n      email:\n"
        f"        url: smtp://127.0.0.1:{smtp_port}\n        from: backupctl@hospital.example\n"
        "        to: [it-team@hospital.example]\n")
    (WORK / "jobs" / "fileserver.yaml").write_text(f"""\
job: fileserver
description: ファイルサーバ（スキャン文書）
host:
  address: local
source:
  paths: ["{WORK}/data/files"]
repository:
  url: {WORK}/repos/fileserver
  password_file: ../secrets/files
  init: true
generations:
  last: 7
  daily: 14
verify:
  sample: 25%
schedule:
  backup: "*-*-* 01:30:00"
  verify: "Sun *-*-* 05:00:00"
""")
    (WORK / "jobs" / "emr-db.yaml").write_text(f"""\
job: emr-db
description: 電子カルテDBサーバ
host:
  address: 127.0.0.1
  port: {port}
  user: {os.environ.get("USER", "root")}
  identity_file: ../ssh/id_ed25519
source:
  paths: ["{WORK}/data/emr"]
databases:
  - name: emr
    kind: postgresql
    dsn: "host={outside}/pg port={pg_port} user=postgres dbname=emr"
    checks:
      - "SELECT count(*) = 2000 FROM 患者"
      - "SELECT bool_and(患者id IS NOT NULL) FROM カルテ"
repository:
  local_url: {WORK}/repos/emr-db
  password_file: ../secrets/emr
  init: true
generations:
  last: 7
  daily: 14
  weekly: 8
copies:
  - name: usb-offline
    kind: offline
    url: {WORK}/media/usb1/emr-db
    password_file: ../secrets/emr-usb
    max_age: 7d
verify:
  sample: all
  rto: 2h
runbook:
  steps: ["電子カルテサービスを起動する", "テスト患者のカルテを開いて表示を確認する"]
schedule:
  backup: "*-*-* 02:00:00"
  copy: "*-*-* 03:00:00"
  verify: "Sun *-*-* 04:00:00"
""")


def main() -> None:
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(mode=0o700)
    WORK.chmod(0o700)
    say("creating demo data, secrets, a PostgreSQL EMR database, a private sshd and an SMTP "
        "server on loopback")
    make_data()
    outside = make_outside()
    try:
        pg_port = start_postgres(outside / "pg")
        sshd, port = start_sshd(WORK / "ssh")
        maildir = WORK / "mail"
        smtp, smtp_port = start_smtp(maildir)
    except BaseException:
        stop_postgres(outside / "pg")
        shutil.rmtree(outside, ignore_errors=True)
        raise
    exporter: subprocess.Popen[bytes] | None = None
    replacement: subprocess.Popen[bytes] | None = None
    try:
        write_config(port, pg_port, smtp_port, outside)
        fingerprint = subprocess.run(
            ["ssh-keygen", "-lf", str(WORK / "ssh" / "host_key.pub")], check=True, text=True,
            capture_output=True).stdout.split()[1]
        say("validating the configuration")
        run("validate")
        exporter, page = start_exporter()
        say(f"the status page: {page} (English: {page}?lang=en); it stays reachable until "
            "the demo ends")
        say("creating the evidence signing key (kept outside the state database)")
        run("evidence", "init-key")
        say("trusting the demo server's host key explicitly (no trust on first use)")
        run("trust", "emr-db", "--fingerprint", fingerprint)
        say("backing up both jobs (the SSH job runs restic and pg_dump on the 'remote' "
            "host: the EMR database is streamed into its own snapshot, every table counted)")
        result = run("backup", "--all", "--json")
        ids = {j["job"]: j.get("snapshot_id") for j in json.loads(result.stdout)["jobs"]}
        run("backup", "fileserver")
        say("copying to the offline USB disk (labelled once with `media init`)")
        (WORK / "media" / "usb1").mkdir(parents=True)
        run("init", "emr-db", "--copies")
        run("media", "init", "emr-db", "usb-offline")
        run("copy", "emr-db")
        say("proving the backups restore byte for byte (and the database table by table)")
        run("verify", "--all", "--mode", "quick")
        say("full restore test: the EMR database restored into a throwaway PostgreSQL")
        run("verify", "emr-db", "--mode", "full")
        run("verify", "emr-db", "--from", "usb-offline")
        run("verify", "fileserver", "--mode", "full")
        say("the worst day: `fileserver` recovered onto a replacement server (a second sshd "
            "on loopback), its newest proven snapshot restored and proven there")
        replacement = recover_onto_replacement()
        say("checking the evidence chain and writing the inspector's report (Japanese)")
        run("evidence", "verify", "--db")
        today = date.today()
        period = ("--from", today.replace(month=1, day=1).isoformat(), "--to", today.isoformat())
        run("report", *period, "--lang", "ja", "--format", "html", "-o",
            str(WORK / "report.html"))
        run("report", *period, "--lang", "ja", "--format", "pdf", "-o", str(WORK / "report.pdf"))
        run("runbook", "emr-db", "--lang", "ja", "-o", str(WORK / "runbook-emr-db.md"))
        say("a backup that fails on purpose: job `lab` waits for the laboratory export")
        export_done = add_failing_job()
        run("backup", "lab", check=False)
        say(f"the notification that arrived in {maildir} (no file names, no secrets)")
        seen = show_mail(maildir, 0)
        say("the export is done: the next backup succeeds and says so once")
        export_done.write_text("ok\n")
        run("backup", "lab")
        show_mail(maildir, seen)
        say("the one-page management summary (PDF)")
        run("report", *period, "--summary", "--format", "pdf", "-o", str(WORK / "summary.pdf"))
        say("status")
        run("status")
        say(f"the status page at {page} says: {page_verdict(page)}")
        say(f"done. Snapshots made: {ids}. Report: {WORK}/report.pdf, summary page: "
            f"{WORK}/summary.pdf, runbook: {WORK}/runbook-emr-db.md, mail: {maildir}. "
            f"Everything is under {WORK}")
    finally:
        if exporter is not None:
            exporter.terminate()
            exporter.wait(timeout=10)
        for server in (sshd, replacement):
            if server is not None:
                server.terminate()
                server.wait(timeout=10)
        smtp.terminate()
        smtp.wait(timeout=10)
        stop_postgres(outside / "pg")
        shutil.rmtree(outside, ignore_errors=True)


if __name__ == "__main__":
    main()
