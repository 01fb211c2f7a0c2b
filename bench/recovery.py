"""Benchmark: `backupctl restore --to ssh://…` against a plain `restic restore` on the target.

Builds the hospital-shaped data set of bench/verify.py (`mixed`: many small files of 2 KB–
1 MB, a database dump of a fifth of the size, a few 64 MiB image files), backs it up with
backupctl into a repository on the orchestrator (untimed), and starts a loopback OpenSSH
server playing the replacement server (its own host key, trusted in known_hosts first). Then,
alternating which goes first, `--repeat` times each, into a fresh directory every time:
  plain    : ssh TARGET restic -r REPO restore SNAPSHOT --target DIR   (what the admin types
             by hand on the target, nothing proven), the repository read two ways: `disk`,
             straight from the orchestrator's disk (possible only because target and
             orchestrator are one machine here: the lower bound), and `sftp`, restic's own
             way to a repository on another host (`-r sftp:ORCHESTRATOR:/REPO`)
  backupctl: backupctl restore JOB --to ssh://root@127.0.0.1:PORT/DIR --snapshot ID
             (the repository served over the SSH connection by rclone, restic on the
             target, owners by name, the proof: every node stat'ed and every file's SHA-256
             on the target against the source manifest; state and signed evidence)
Prints the best of each and the ratios (goal ≤ 1.25× against the restore a replacement
server can type by hand, `sftp`), and where backupctl's time went (the recovery record's own
step timings: restore, owners, proof; the rest is start-up, the plan and the record).

    .venv/bin/python bench/recovery.py [--gib 1] [--repeat 3] [--workdir DIR] [--keep]
        [--code DIR]

Both run on this machine (the target is loopback), so the `disk` contender reads the
repository from disk where backupctl's goes through rclone and the tunnel, and all of them
share two cores with the transport's processes: the ratios include that.
Prints Markdown (docs/benchmarks.md holds a run). A few minutes on 2 cores at 1 GiB.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.verify import PASSWORD, grow, settle

BACKUPCTL = [sys.executable, "-P", "-m", "backupctl"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Target:
    """A loopback sshd playing the replacement server (root login by key only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.identity = root / "id_ed25519"
        self.host_key = root / "host_key"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True)
        for key in (self.host_key, self.identity):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True)
        shutil.copy(f"{self.identity}.pub", self.root / "authorized_keys")
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"PidFile {self.root}/sshd.pid\nAuthorizedKeysFile {self.root}/authorized_keys\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "PermitRootLogin prohibit-password\nMaxSessions 50\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n")
        Path("/run/sshd").mkdir(exist_ok=True)
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(config), "-E",
                                      str(self.root / "sshd.log")])
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise SystemExit("sshd did not start")

    def known_hosts_line(self) -> str:
        key = Path(f"{self.host_key}.pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {key[0]} {key[1]}\n"

    def ssh(self, command: list[str]) -> None:
        subprocess.run(["ssh", "-q", "-i", str(self.identity), "-p", str(self.port),
                        "-o", f"UserKnownHostsFile={self.root / 'known_hosts'}",
                        "-o", "BatchMode=yes", "root@127.0.0.1", shlex.join(command)],
                       check=True, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


class Site:
    def __init__(self, work: Path, code: Path) -> None:
        self.work = work
        self.code = code
        self.src = work / "src"
        self.repo = work / "repo"
        self.pw = work / "password"
        self.config = work / "backupctl.yaml"
        self.target = Target(work / "target-sshd")
        self.runs = 0
        self.snapshot = ""

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.code)}

    def backupctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*BACKUPCTL, "-c", str(self.config), *args], env=self.env(),
                              capture_output=True, text=True)

    def setup(self, gib: float) -> int:
        for d in (self.src, self.work / "jobs", self.work / "state", self.work / "scratch"):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.pw.write_text(PASSWORD + "\n")
        self.pw.chmod(0o600)
        files = grow(self.src, gib)
        self.target.start()
        (self.work / "known_hosts").write_text(self.target.known_hosts_line())
        shutil.copy(self.work / "known_hosts", self.target.root / "known_hosts")
        self.config.write_text(
            f"jobs_dir: {self.work / 'jobs'}\nstate_dir: {self.work / 'state'}\n"
            f"scratch_dir: {self.work / 'scratch'}\nknown_hosts: {self.work / 'known_hosts'}\n"
            f"evidence_key: {self.work / 'evidence.key'}\n")
        (self.work / "jobs" / "hospital.yaml").write_text(
            f"job: hospital\nhost: {{address: local}}\nsource: {{paths: [{self.src}]}}\n"
            f"repository: {{url: {self.repo}, password_file: {self.pw}}}\n"
            "generations: {last: 7}\nverify: {sample: 5%}\n"
            "schedule: {backup: '*-*-* 02:00:00', verify: 'Sun *-*-* 04:00:00'}\n")
        subprocess.run(["restic", "-q", "-r", str(self.repo), "--password-file", str(self.pw),
                        "init"], check=True, stdout=subprocess.DEVNULL)
        for args in (("evidence", "init-key"), ("backup", "hospital")):
            done = self.backupctl(*args)
            if done.returncode != 0:
                raise SystemExit(f"backupctl {' '.join(args)}: {done.stderr}")
        listed = subprocess.run(["restic", "-r", str(self.repo), "--password-file",
                                 str(self.pw), "snapshots", "--json", "latest"],
                                check=True, capture_output=True, text=True)
        self.snapshot = json.loads(listed.stdout)[0]["id"]
        return files

    def fresh(self, who: str) -> Path:
        self.runs += 1
        return self.work / "restored" / f"{who}-{self.runs}"

    def plain(self, over: str = "disk") -> float:
        """restic restore typed by hand on the target: the repository read from the disk
        (only possible here, where target and orchestrator are one machine), or `sftp`:
        over SSH from the orchestrator, restic's own way to a repository on another host."""
        into = self.fresh(f"plain-{over}")
        repo = ["-r", str(self.repo)] if over == "disk" else [
            "-r", f"sftp:root@127.0.0.1:{self.repo}", "-o", "sftp.command=" + shlex.join([
                "ssh", "-i", str(self.target.identity), "-p", str(self.target.port), "-o",
                f"UserKnownHostsFile={self.target.root / 'known_hosts'}", "-o",
                "BatchMode=yes", "root@127.0.0.1", "-s", "sftp"])]
        started = time.monotonic()
        self.target.ssh(["restic", "-q", *repo, "--password-file", str(self.pw), "restore",
                         self.snapshot, "--target", str(into)])
        elapsed = time.monotonic() - started
        shutil.rmtree(into)
        return elapsed

    def ours(self) -> tuple[float, dict[str, Any]]:
        into = self.fresh("backupctl")
        started = time.monotonic()
        done = self.backupctl("restore", "hospital", "--to",
                              f"ssh://root@127.0.0.1:{self.target.port}{into}", "--identity",
                              str(self.target.identity), "--snapshot", self.snapshot,
                              "--json")
        elapsed = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"backupctl restore exited {done.returncode}: {done.stderr}")
        shutil.rmtree(into)
        [job] = json.loads(done.stdout)["jobs"]
        return elapsed, job


Runs = tuple[list[tuple[float, dict[str, Any]]], dict[str, list[float]]]


def contest(site: Site, repeat: int) -> Runs:
    """`repeat` runs each, rotating which goes first, after one untimed plain restore (the
    first restore after a backup finds a file system that freed no inodes lately)."""
    site.plain()
    ours: list[tuple[float, dict[str, Any]]] = []
    plain: dict[str, list[float]] = {"disk": [], "sftp": []}
    turns = ["ours", "disk", "sftp"]
    for i in range(repeat):
        for turn in turns[i % 3:] + turns[:i % 3]:
            settle()
            if turn == "ours":
                ours.append(site.ours())
            else:
                plain[turn].append(site.plain(turn))
    return ours, plain


def report(args: argparse.Namespace, files: int, ours: list[tuple[float, dict[str, Any]]],
           plain: dict[str, list[float]]) -> None:
    best, job = min(ours, key=lambda r: r[0])
    steps = job.get("timings_ms") or {}
    restore_ms = int(job.get("restore_ms") or 0)
    stepped = sum(int(v) for v in steps.values())
    version = subprocess.run(["restic", "version"], capture_output=True, text=True).stdout
    print(f"{args.gib:g} GiB, {files} files (mixed shape); {version.strip()}; cores: "
          f"{os.cpu_count()}; best of {args.repeat} alternating; backupctl: {args.code}\n")
    print(f"{job['files']} files, {job['bytes'] / (1 << 20):.0f} MiB; backupctl restore --to "
          f"(incl. proof), best: {best:.2f} s\n")
    print("| plain `restic restore` by hand on the target, the repository read | plain, best "
          "| ratio (backupctl / plain) |")
    print("|---|---|---|")
    for over, seen in plain.items():
        how = ("from the orchestrator's disk (loopback only)" if over == "disk" else
               "over SSH from the orchestrator (`-r sftp:HOST:/REPO`)")
        print(f"| {how} | {min(seen):.2f} s | **{best / min(seen):.2f}×** |")
    print()
    print("Where backupctl's best run went (its recovery record's timings):\n")
    print("| step | seconds |")
    print("|---|---|")
    for name, ms in steps.items():
        print(f"| {name} | {int(ms) / 1000:.2f} |")
    print(f"| the plan: SSH connection and host key, `restic find` of the snapshot, the "
          f"manifest, the target probed | {(restore_ms - stepped) / 1000:.2f} |")
    print(f"| outside the measured RTO: Python start-up, imports, job files; recording "
          f"(state, signed evidence) and exit | {best - restore_ms / 1000:.2f} |")
    print(f"| **total** (measured RTO in the record: {restore_ms / 1000:.2f} s) | "
          f"{best:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1],
                        help="run backupctl from this checkout (default: this one)")
    args = parser.parse_args()
    args.code = args.code.resolve()
    compileall.compile_dir(args.code / "backupctl", quiet=1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="backupctl-bench-recovery-"))
    site = Site(work, args.code)
    try:
        files = site.setup(args.gib)
        ours, plain = contest(site, args.repeat)
    finally:
        site.target.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(args, files, ours, plain)


if __name__ == "__main__":
    main()
