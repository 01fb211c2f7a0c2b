"""restic: command builders, JSON parsers, and the one exit-code table."""
