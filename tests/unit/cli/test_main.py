"""cli.main: the command table, the command a command line names, and what a run imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from backupctl.cli.main import COMMANDS, build, command_name


def _top_level(app: typer.Typer) -> list[str]:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return list(group.commands)


def test_the_table_names_every_command_each_module_registers() -> None:
    registered = _top_level(build(["--help"]))
    assert sorted(registered) == sorted(COMMANDS)
    for name, module in COMMANDS.items():
        only = _top_level(build([name]))
        assert name in only
        assert {COMMANDS[other] for other in only} == {module}


@pytest.mark.parametrize(("args", "name"), [
    (["verify", "ok"], "verify"),
    (["-c", "verify", "drill"], "drill"),          # the value of -c is never the command
    (["--config", "x.yaml", "-v", "status"], "status"),
    (["--config=x.yaml", "evidence", "verify"], "evidence"),
    (["-cx.yaml", "copy"], "copy"),
    (["-vc", "report", "backup"], "backup"),       # -v and -c clustered, -c takes the next
    (["-v", "--", "metrics"], "metrics"),
    (["--help"], None),
    (["--help", "verify"], None),                   # the program's help: every command
    (["verify", "--help"], "verify"),
    ([], None),
    (["-c"], None),
])
def test_command_name_skips_the_global_options(args: list[str], name: str | None) -> None:
    assert command_name(args) == name


def test_unknown_commands_and_help_load_every_module() -> None:
    everything = _top_level(build([]))
    assert _top_level(build(["nosuchcommand"])) == everything
    assert _top_level(build(["-v", "--help"])) == everything
    assert _top_level(build(["--help", "verify"])) == everything


def test_a_verify_does_not_import_the_other_commands_machinery() -> None:
    code = ("import sys; from backupctl.cli.main import build; build(['verify', 'x']); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('backupctl.'))))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True).stdout.split()
    assert "backupctl.cli.verify" in loaded
    for other in ("backupctl.cli.drill", "backupctl.cli.evidence", "backupctl.cli.metrics",
                  "backupctl.actions.drill", "backupctl.metrics.exporter",
                  "backupctl.evidence.report"):
        assert other not in loaded



def test_a_backup_does_not_import_what_only_other_commands_or_databases_need() -> None:
    """Issue 25: a backup of a job without databases pays no start-up for the S3 Object Lock
    and probe code (urllib), `status`'s readers, or the database dumps and provers."""
    code = ("import sys; from backupctl.cli.main import build; build(['backup', 'x']); "
            "import backupctl.actions.backup; print(' '.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True, timeout=120).stdout.split()
    assert "backupctl.actions.backup" in loaded and "backupctl.databases" in loaded
    for other in ("backupctl.actions.objectlock", "backupctl.actions.probe",
                  "backupctl.actions.status", "backupctl.actions.media", "rich.table",
                  "urllib.request",
                  "backupctl.databases.dump", "backupctl.databases.kinds",
                  "backupctl.databases.prove", "backupctl.databases.cluster",
                  "tenacity", "sqlalchemy.orm", "psycopg"):
        assert other not in loaded


def test_flags_show_no_value_in_help_and_options_with_values_keep_theirs() -> None:
    """Help once said `-v, --verbose <bool>` while `--verbose true` is a usage error
    (issue 29): a flag takes no value and shows none."""
    shown = subprocess.run([sys.executable, "-m", "backupctl", "--help"], capture_output=True,
                           text=True, timeout=60, env={"COLUMNS": "100", "PATH": "/usr/bin"})
    lines = {line.split()[1]: line for line in shown.stdout.splitlines()
             if line.startswith("│ --")}
    assert "<bool>" not in lines["--verbose"] and "<bool>" not in lines["--version"]
    assert "<path>" in lines["--config"]
    flag = subprocess.run([sys.executable, "-m", "backupctl", "--verbose", "true"],
                          capture_output=True, text=True, timeout=60)
    assert flag.returncode == 2 and "No such command 'true'" in flag.stderr
