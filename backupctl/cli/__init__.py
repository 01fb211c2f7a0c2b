"""Command line (typer): parses, calls actions, maps results to exit codes. No logic here."""

from backupctl.cli.main import main

__all__ = ["main"]
