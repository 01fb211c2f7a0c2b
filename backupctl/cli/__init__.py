"""Command line (typer): parses, calls actions, maps results to exit codes. No logic here."""

from backupctl.cli.app import app, main

__all__ = ["app", "main"]
