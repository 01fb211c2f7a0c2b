"""backupctl: backup verification and restore-test orchestrator (restic over SSH)."""

__version__ = "0.1.0"
