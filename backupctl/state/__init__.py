"""State: the database of runs, manifests and evidence; per-job locks; crash recovery."""
