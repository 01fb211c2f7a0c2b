"""Proving data: streaming hashes, deterministic samples, source manifests."""
