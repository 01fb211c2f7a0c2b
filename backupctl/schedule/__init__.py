"""Scheduling: systemd template units and per-job drop-ins (units.py), or a crontab (cron.py)."""

from backupctl.schedule.cron import CronError, cron_command, crontab, normalize, to_cron
from backupctl.schedule.units import (
    ACTIONS,
    COMMANDS,
    DEFAULT_BIN,
    DEFAULT_DOCS,
    DEFAULT_UNIT_DIR,
    MARKER,
    RANDOMIZED_DELAY,
    SCHEDULE_DROPIN,
    SERVICE_DROPIN,
    Entry,
    UnitFile,
    enable_commands,
    entries,
    installed_docs,
    plan,
    remove_stale,
    service_dropin,
    stale,
    template_units,
    timer_dropin,
    unit_quote,
    writable_paths,
)

__all__ = ["ACTIONS", "COMMANDS", "DEFAULT_BIN", "DEFAULT_DOCS", "DEFAULT_UNIT_DIR", "MARKER",
           "RANDOMIZED_DELAY", "SCHEDULE_DROPIN", "SERVICE_DROPIN", "CronError", "Entry",
           "UnitFile", "cron_command", "crontab", "enable_commands", "entries",
           "installed_docs", "normalize", "plan",
           "remove_stale", "service_dropin", "stale", "template_units", "timer_dropin",
           "to_cron", "unit_quote", "writable_paths"]
