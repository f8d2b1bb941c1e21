"""Deterministic data mixtures: exact shares, same seed same batches, one source = DataOrder."""

import numpy as np
import pytest

from lmforge.data import PackedTokens, ShardWriter
from lmforge.errors import ConfigError
from lmforge.train.data_order import DataOrder
from lmforge.train.mixture import Mixture


def source(tmp_path, name: str, offset: int, tokens: int) -> PackedTokens:
    w = ShardWriter(tmp_path / name, vocab_size=70_000, eos_id=0)
    w.add(list(range(offset, offset + tokens)))  # token ids tell which source a window came from
    w.close()
    return PackedTokens(tmp_path / name, 8)


@pytest.fixture
def sources(tmp_path):
    return {
        "de": source(tmp_path, "de", 10_000, 4000),
        "en": source(tmp_path, "en", 30_000, 800),
        "code": source(tmp_path, "code", 50_000, 400),
    }


def test_realised_shares_match_the_weights_over_every_prefix(sources):
    weights = {"de": 0.7, "en": 0.25, "code": 0.05}
    m = Mixture(sources, weights, seed=3)
    batch = m.batch(0, 5000)
    first = batch[:, 0]
    for name, w in weights.items():
        low = {"de": 10_000, "en": 30_000, "code": 50_000}[name]
        share = np.mean((first >= low) & (first < low + 10_000))
        assert abs(share - w) < 0.01, (name, share)
    counts = np.zeros(3)
    for g, (s, _) in enumerate(Mixture(sources, weights, seed=3).assignments(0, 2000)):
        counts[s] += 1
        assert np.all(np.abs(counts - np.array([0.7, 0.25, 0.05]) * (g + 1)) <= 1.0)  # never more than a sample off
    assert m.counts() == {"de": 3500, "en": 1250, "code": 250}


def test_same_seed_same_batches_and_random_access_equals_sequential(sources):
    weights = {"de": 0.8, "en": 0.2}
    a = Mixture(sources, weights, seed=1).batch(0, 300)
    b = Mixture(sources, weights, seed=1)
    pieces = [b.batch(200, 100), b.batch(0, 200)]  # out of order: resume, another rank's slice
    assert np.array_equal(a, np.concatenate([pieces[1], pieces[0]]))
    assert not np.array_equal(a, Mixture(sources, weights, seed=2).batch(0, 300))
    assert (a[:, 0] < 50_000).all()  # a source with no weight is never read


def test_single_source_reads_what_data_order_reads(sources):
    m = Mixture({"de": sources["de"]}, {"de": 1.0}, seed=9)
    order = DataOrder(len(sources["de"]), 9)
    assert np.array_equal(m.batch(0, 1200), sources["de"].batch(order.indices(0, 1200)))


def test_unknown_source_in_mix_is_an_error(sources):
    with pytest.raises(ConfigError, match="mix names unknown source.*fr; the sources are"):
        Mixture(sources, {"fr": 1.0}, seed=0)
