"""Checks beside the hashes: the job's application commands and `restic check`."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from backupctl.actions.context import Context
from backupctl.errors import Reason, ResticError
from backupctl.execute import Result, Runner, tail
from backupctl.restic import commands
from backupctl.restic import run as restic
from backupctl.restic.codes import ResticExit
from backupctl.restic.run import Repo
from backupctl.state.records import CommandRun, Mismatch

_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


@dataclass(frozen=True)
class CommandsOutcome:
    runs: tuple[CommandRun, ...]
    failures: tuple[str, ...]


def run_commands(runner: Runner, templates: list[str], root: Path, *,
                 timeout: float) -> CommandsOutcome:
    """Each `verify.commands` entry with `{restored}` → the restored tree (quoted)."""
    runs: list[CommandRun] = []
    failures: list[str] = []
    for template in templates:
        result = runner.shell(template.replace("{restored}", shlex.quote(str(root))),
                              timeout=timeout)
        output = tail((result.stdout.decode("utf-8", "replace") + "\n" + result.stderr)
                      .strip(), 15)
        runs.append(CommandRun(command=template, exit_code=result.returncode,
                               output_tail=output, duration_ms=round(result.duration * 1000)))
        if not result.ok:
            what = "timed out" if result.timed_out else f"exited {result.returncode}"
            failures.append(f"check command {template!r} {what}: {output}")
    return CommandsOutcome(tuple(runs), tuple(failures))


@dataclass(frozen=True)
class CheckOutcome:
    """`restic check`: no errors, or the damage it found (bad data)."""

    output: str
    mismatches: tuple[Mismatch, ...]
    failures: tuple[str, ...]
    ms: int
    step: str


def restic_check(runner: Runner, repo: Repo, *, job: str, read_data_subset: float | None,
                 no_lock: bool, timeout: float,
                 read_data_group: tuple[int, int] | None = None) -> CheckOutcome:
    """Run `restic check`; damage is a finding, a check that could not run raises."""
    argv = commands.check(repo.url, repo.password, read_data_subset=read_data_subset,
                          no_lock=no_lock, read_data_group=read_data_group)
    unlocked: list[Result] = []
    result, outcome = restic.attempt(runner, argv, timeout=timeout, unlock=repo,
                                     on_unlock=unlocked.append)
    text = (result.stdout.decode("utf-8", "replace") + "\n" + result.stderr).strip()
    output = tail("\n".join(line for line in text.splitlines() if not line.startswith("[")),
                  40)
    ms = round(result.duration * 1000)
    subset = (f" --read-data-subset={read_data_group[0]}/{read_data_group[1]}"
              if read_data_group else f" --read-data-subset={read_data_subset * 100:g}%"
              if read_data_subset else "")
    if unlocked:  # a killed run's lock (restic 0.14 never expires them)
        subset += (f" (after a stale lock: restic unlock, stale locks only, exited "
                   f"{unlocked[0].returncode})")
    if outcome is ResticExit.OK:
        return CheckOutcome(output, (), (), ms, f"restic check{subset}: no errors")
    # restic 0.14 ends every check that found damage with "repository contains errors";
    # any other failure (network, permissions) means the check could not run: exit 1.
    if outcome is ResticExit.FATAL and not result.timed_out and "contains errors" in text:
        packs = sorted(set(_HEX64.findall(text)))
        found = []
        for line in _check_errors(text):
            pack = _HEX64.search(line)
            found.append(Mismatch(path=f"pack {pack.group(0)}" if pack else "repository",
                                  got=line, reason="check"))
        failure = ("restic check found repository errors"
                   + (f" in pack(s) {', '.join(packs)}" if packs else ""))
        return CheckOutcome(output, tuple(found), (failure,), ms,
                            f"restic check{subset}: ERRORS")
    raise ResticError(f"{job}: restic check of {repo.name} failed ({outcome.value}) "
                      f"{result.describe()}", reason=Reason.CHECK)


def check_beside_restore(ctx: Context, runner: Runner, job: str, repo: Repo, *,
                         read_data_subset: float | None,
                         read_data_group: tuple[int, int] | None = None) -> CheckOutcome:
    """`restic check --no-lock` beside our restore, which holds restic's shared lock (the
    job's lock keeps backupctl's prune away). `restic version` for the run's evidence
    first, so that start is not paid later."""
    _ = ctx.restic_version
    return restic_check(runner, repo, job=job, read_data_subset=read_data_subset,
                        no_lock=True, timeout=ctx.timeout, read_data_group=read_data_group)


def _check_errors(text: str) -> list[str]:
    skip = ("create exclusive lock", "load indexes", "check all packs", "check snapshots",
            "read ", "no errors", "Fatal: repository contains errors", "using temporary cache")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith("[") and not line.startswith(skip)]
    return lines or ["restic check reported errors"]
