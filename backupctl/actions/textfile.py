"""The node_exporter textfile kept current: a run observer (SPEC §5).

When `textfile_dir` is set, `cli.common.context` registers `TextfileRefresh`: after every
recorded run (backup, copy, probe, verify, drill, clear, and runs found interrupted), after
the notifications it caused, `textfile_dir/backupctl.prom` is rewritten from the state. A
failure to write is a warning (metrics/textfile.py); it never changes the run.
"""

from __future__ import annotations

from backupctl.actions.context import Context
from backupctl.config.schema import Job
from backupctl.state.queries import RunRow


class TextfileRefresh:
    """The RunObserver that rewrites the metrics textfile after each recorded run."""

    def started(self, ctx: Context, job: Job, row: RunRow) -> None:
        """Nothing to tell before the run is recorded."""

    def finished(self, ctx: Context, job: Job, row: RunRow) -> None:
        refresh(ctx)


def refresh(ctx: Context) -> None:
    """Rewrite the textfile now (also after commands that record notices, not runs)."""
    if ctx.config.settings.textfile_dir is None:
        return
    from backupctl.metrics.textfile import refresh as write  # only where metrics are kept

    write(ctx.config, clock=ctx.clock, restic_version=ctx.restic_version)
