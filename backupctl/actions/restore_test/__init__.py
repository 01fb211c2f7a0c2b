"""The restore-test engine shared by `verify` and `drill`: small functions passing values.

snapshot.py  which snapshot, and the source manifest it is proven against
scratch.py   0700 scratch directories, safe wipes, leftovers, free space
restore.py   `restic restore` of all of a snapshot or of the manifest's files
compare.py   hashes against the manifest; every file against the snapshot's listing
checks.py    the job's application commands and `restic check`
verdict.py   Findings and the one set of rules: proven, bad data, or not proven
quick.py / full.py   the two verify pipelines (what runs beside what)
"""
