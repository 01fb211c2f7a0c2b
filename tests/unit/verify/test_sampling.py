"""Deterministic rotating samples cover the whole snapshot (issue #4)."""

from __future__ import annotations

from backupctl.config.values import parse_sample
from backupctl.verify import sampling

PATHS = [f"/data/dir{i % 7}/file {i}" for i in range(103)]
SEED = sampling.seed_for("emr-db")


def test_sample_has_the_configured_size() -> None:
    assert len(sampling.choose(PATHS, sample=parse_sample("5%"), seed=SEED, round_no=0)) == 5
    assert len(sampling.choose(PATHS, sample=parse_sample(10), seed=SEED, round_no=3)) == 10
    assert sorted(sampling.choose(PATHS, sample=parse_sample("all"), seed=SEED,
                                  round_no=7)) == sorted(PATHS)


def test_sample_is_deterministic_and_ignores_listing_order() -> None:
    sample = parse_sample("10%")
    first = sampling.choose(PATHS, sample=sample, seed=SEED, round_no=2)
    again = sampling.choose(list(reversed(PATHS)), sample=sample, seed=SEED, round_no=2)
    assert first == again


def test_rotation_covers_every_file_in_one_cycle() -> None:
    sample = parse_sample("10%")
    rounds = sampling.rounds(sample, len(PATHS))
    covered: set[str] = set()
    for k in range(rounds):
        covered |= set(sampling.choose(PATHS, sample=sample, seed=SEED, round_no=k))
    assert covered == set(PATHS)
    assert rounds == 11


def test_rounds_differ_and_the_seed_matters() -> None:
    sample = parse_sample(10)
    assert sampling.choose(PATHS, sample=sample, seed=SEED, round_no=0) != sampling.choose(
        PATHS, sample=sample, seed=SEED, round_no=1)
    other = sampling.seed_for("pacs")
    assert sampling.choose(PATHS, sample=sample, seed=SEED, round_no=0) != sampling.choose(
        PATHS, sample=sample, seed=other, round_no=0)


def test_a_tiny_tree_still_gets_one_file() -> None:
    assert len(sampling.choose(["/a"], sample=parse_sample("5%"), seed=SEED,
                               round_no=0)) == 1
    assert sampling.choose([], sample=parse_sample("5%"), seed=SEED, round_no=0) == []
