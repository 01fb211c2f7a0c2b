"""Command line (typer): parses, calls actions, maps results to exit codes. No logic here."""

from backupctl.cli.main import app, main

__all__ = ["app", "main"]
