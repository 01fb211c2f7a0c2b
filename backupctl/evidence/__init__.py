"""Audit evidence: hash-chained records, reports, encrypted bundles."""
