"""Orchestration of backups, copies, restore tests and drills: results as data, no printing."""
