"""The status page (SPEC §13): one verdict for the site, a card per job, read at a glance.

Built from the state the metrics read (`state.view`), judged by `verdict.py`, rendered by
Jinja2 (`templates/`, autoescaped) and served read-only by `backupctl exporter`.
"""
