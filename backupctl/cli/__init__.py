"""Command line (typer): parses, calls actions, maps results to exit codes. No logic here."""

import os

# Before any model is built: pydantic looks for plugins in the entry points of every installed
# distribution when it builds the first model (8–11 ms of each start on 2 cores, issue 25);
# backupctl uses none. An operator's own setting is kept.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from backupctl.cli.main import main

__all__ = ["main"]
