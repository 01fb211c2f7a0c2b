"""`make demo`: a real backupctl run on an embedded default, start to finish.

Creates everything under demo/work/ (wiped first): a global config with an SQLite state
database, two local restic repositories, one `host: local` job and one job over SSH to a
private sshd started on a loopback port (its host key trusted explicitly with
`backupctl trust --fingerprint`), then runs backup → verify → status → report and prints
what happened. Notifications: a real SMTP server (aiosmtpd, its own process) writes every
mail into demo/work/mail/; a third job's backup fails on purpose (its `before` hook finds
the laboratory export unfinished) and the demo shows the Japanese mail that arrived, then
the recovery mail, and writes the one-page management summary (PDF). Nothing outside
demo/work/ is touched; sshd and the SMTP server are stopped at the end.
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
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
BACKUPCTL = [sys.executable, "-m", "backupctl", "-c", str(WORK / "backupctl.yaml")]


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
    emr = WORK / "data" / "emr"
    files = WORK / "data" / "files" / "スキャン"
    emr.mkdir(parents=True)
    files.mkdir(parents=True)
    db = sqlite3.connect(emr / "emr.sqlite")
    db.execute("CREATE TABLE karte (id INTEGER PRIMARY KEY, patient TEXT, note TEXT)")
    db.executemany("INSERT INTO karte (patient, note) VALUES (?, ?)",
                   [(f"患者{i:04d}", "経過良好 " * 20) for i in range(2000)])
    db.commit()
    db.close()
    for i in range(40):
        (files / f"スキャン {i:03d}.pdf").write_bytes(os.urandom(32 * 1024))
    (WORK / "data" / "files" / "a'b\"c; $(echo oops).txt").write_text("quoted name\n")


def write_config(port: int, smtp_port: int) -> None:
    secrets = WORK / "secrets"
    secrets.mkdir(mode=0o700)
    for name in ("files", "emr", "emr-usb"):
        (secrets / name).write_text(os.urandom(24).hex() + "\n")
        (secrets / name).chmod(0o600)
    (WORK / "jobs").mkdir()
    (WORK / "backupctl.yaml").write_text(
        "jobs_dir: jobs\nstate_dir: state\nscratch_dir: scratch\n"
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
  before: ["sqlite3 '{WORK}/data/emr/emr.sqlite' 'PRAGMA wal_checkpoint(FULL);'"]
repository:
  url: {WORK}/repos/emr-db
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
  always: ["{WORK}/data/emr/emr.sqlite"]
  commands: ["sqlite3 {{restored}}{WORK}/data/emr/emr.sqlite 'PRAGMA integrity_check'"]
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
    say("creating demo data, secrets, a private sshd and an SMTP server on loopback")
    make_data()
    sshd, port = start_sshd(WORK / "ssh")
    maildir = WORK / "mail"
    smtp, smtp_port = start_smtp(maildir)
    try:
        write_config(port, smtp_port)
        fingerprint = subprocess.run(
            ["ssh-keygen", "-lf", str(WORK / "ssh" / "host_key.pub")], check=True, text=True,
            capture_output=True).stdout.split()[1]
        say("validating the configuration")
        run("validate")
        say("creating the evidence signing key (kept outside the state database)")
        run("evidence", "init-key")
        say("trusting the demo server's host key explicitly (no trust on first use)")
        run("trust", "emr-db", "--fingerprint", fingerprint)
        say("backing up both jobs (the SSH job runs restic on the 'remote' host)")
        result = run("backup", "--all", "--json")
        ids = {j["job"]: j.get("snapshot_id") for j in json.loads(result.stdout)["jobs"]}
        run("backup", "fileserver")
        say("copying to the offline USB disk (labelled once with `media init`)")
        (WORK / "media" / "usb1").mkdir(parents=True)
        run("init", "emr-db", "--copies")
        run("media", "init", "emr-db", "usb-offline")
        run("copy", "emr-db")
        say("proving the backups restore byte for byte")
        run("verify", "--all", "--mode", "quick")
        run("verify", "emr-db", "--mode", "full")
        run("verify", "emr-db", "--from", "usb-offline")
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
        say(f"done. Snapshots made: {ids}. Report: {WORK}/report.pdf, summary page: "
            f"{WORK}/summary.pdf, runbook: {WORK}/runbook-emr-db.md, mail: {maildir}. "
            f"Everything is under {WORK}")
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)
        smtp.terminate()
        smtp.wait(timeout=10)


if __name__ == "__main__":
    main()
