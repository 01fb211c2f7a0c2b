"""Commands of the copy capability (registered on the shared typer app)."""

from __future__ import annotations

from backupctl.cli.app import app

__all__ = ["app"]
