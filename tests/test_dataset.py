"""Windows over the cache, normalisation, validation windows and the balanced DDP-aware sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from fake_cache import make_fake_cache
from flowmimic.cache.catalog import usable_sequences
from flowmimic.training.windows import AIST, MVH, BalancedBatchSampler, MotionWindows, validation_batches, validation_keys
from flowmimic.errors import DataError
from flowmimic.features import layout
from flowmimic.features.normalize import Normalizer


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    params = make_fake_cache(tmp_path_factory.mktemp("fake"))
    seqs = usable_sequences(params.cache.dir, params.split.dir, params.validate_.dir, "train")
    return params, seqs


def test_fake_cache_is_a_valid_catalog(fake):
    params, seqs = fake
    ids = {s.id for s in seqs}
    assert len(seqs) == 12 and "aist_train_skipped" not in ids and "aist_train_06" not in ids  # bad-listed
    assert {s.domain_id for s in seqs} == {AIST, MVH}
    assert all(s.genre_id == 0 for s in seqs if s.domain == "mvh")
    assert all(1 <= s.genre_id <= 10 for s in seqs if s.domain == "aist")
    assert all(s.load().shape == (s.frames, layout.DIM) for s in seqs)


def test_normalizer_round_trip_and_contacts_untouched(fake):
    params, seqs = fake
    norm = Normalizer.from_file(params.stats.path)
    x = seqs[0].load()
    y = norm.normalize(x)
    assert np.array_equal(y[:, layout.CONTACTS], x[:, layout.CONTACTS])
    assert np.allclose(norm.denormalize(y), x, atol=1e-5)
    t = torch.from_numpy(x).double()
    assert torch.allclose(norm.normalize(t), torch.from_numpy(y).double(), atol=1e-5)
    odd = Normalizer(np.ones(263), np.full(263, 2.0))                   # file values on contacts ignored
    assert np.array_equal(odd.normalize(np.ones((1, 263)))[0, 259:], np.ones(4))
    with pytest.raises(DataError, match="stats"):
        Normalizer.from_file(params.stats.path + ".missing")


def test_window_item_normalised_and_padded(fake):
    params, seqs = fake
    norm = Normalizer.from_file(params.stats.path)
    ds = MotionWindows(seqs, 8, norm)
    long_i = next(i for i, s in enumerate(seqs) if s.frames >= 12)
    item = ds[(long_i, 3)]
    assert item["x"].shape == (8, layout.DIM) and item["x"].dtype == torch.float32
    assert item["mask"].all() and item["domain"].dtype == torch.long
    assert np.allclose(item["x"].numpy(), norm.normalize(seqs[long_i].load()[3:11]), atol=1e-6)
    short_i = next(i for i, s in enumerate(seqs) if s.frames == 5)
    item = ds[(short_i, 0)]
    assert item["mask"].tolist() == [True] * 5 + [False] * 3
    assert torch.equal(item["x"][5:], torch.zeros(3, layout.DIM))
    assert item["genre"].item() == seqs[short_i].genre_id
    with pytest.raises(DataError, match="no frames"):
        ds[(short_i, 6)]


def test_validation_windows_cover_each_frame_once():
    frames = [5, 8, 17]
    keys = validation_keys(frames, 8)
    assert keys == [(0, 0), (1, 0), (2, 0), (2, 8), (2, 16)]
    shares = [validation_batches(frames, 8, 2, rank=r, world_size=2) for r in range(2)]
    flat = [k for share in shares for b in share for k in b]
    assert sorted(flat) == sorted(keys) and all(len(b) <= 2 for s in shares for b in s)


def sampler(frames, domains, **kw):
    args = dict(batch_size=8, seq_len=10, windows_per_sequence=2, mvh_epoch_ratio=1.0, seed=0)
    return BalancedBatchSampler(frames, domains, **{**args, **kw})


def test_sampler_balances_domains_and_subsamples_mvh():
    rng = np.random.default_rng(0)
    domains = [AIST] * 12 + [MVH] * 40
    frames = rng.integers(5, 50, size=len(domains)).tolist()
    s = sampler(frames, domains)
    s.set_epoch(0)
    batches = list(s)
    assert len(batches) == len(s) == 6                             # 24 AIST + 24 MVH items / 8
    counts = Counter(domains[i] for b in batches for i, _ in b)
    assert counts == {AIST: 24, MVH: 24}
    for b in batches:                                              # every batch is mixed ~evenly
        assert 3 <= sum(domains[i] == AIST for i, _ in b) <= 5
    aist_seen = Counter(i for b in batches for i, _ in b if domains[i] == AIST)
    assert set(aist_seen.values()) == {2}                          # each AIST sequence twice
    for b in batches:
        for i, start in b:
            assert 0 <= start <= max(frames[i] - 10, 0)
    half = sampler(frames, domains, mvh_epoch_ratio=0.5)
    assert half.counts == {AIST: 24, MVH: 12}


def test_sampler_reproducible_per_epoch():
    frames, domains = [30] * 10, [AIST] * 5 + [MVH] * 5
    a, b = sampler(frames, domains), sampler(frames, domains)
    a.set_epoch(3), b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)


def test_sampler_ddp_shares_disjoint_equal_and_complete():
    frames, domains = [30] * 16, [AIST] * 8 + [MVH] * 8              # 32 items = 2 ranks x 2 batches x 8
    ranks = [sampler(frames, domains, rank=r, world_size=2) for r in range(2)]
    plan = ranks[0].epoch_plan(1)
    assert plan.shape == (4, 8)
    shares = []
    for s in ranks:
        s.set_epoch(1)
        shares.append([i for batch in s for i, _ in batch])
    assert len(shares[0]) == len(shares[1]) == 16 and len(ranks[0]) == len(ranks[1]) == 2
    assert Counter(shares[0]) + Counter(shares[1]) == Counter(plan.ravel().tolist())
    assert Counter(plan.ravel().tolist()) == Counter({i: 2 for i in range(16)})
    # positions are disjoint: rank r takes plan rows r, r + 2
    assert shares[0] == plan[0::2].ravel().tolist() and shares[1] == plan[1::2].ravel().tolist()


@pytest.mark.parametrize("domains", [[AIST] * 5, [MVH] * 5])
def test_sampler_with_one_domain_empty(domains):
    s = sampler([20] * 5, domains, world_size=3, rank=2)
    s.set_epoch(0)
    batches = list(s)
    assert len(batches) == len(s) == 1 and len(batches[0]) == 8       # 10 items, padded by wrapping
    assert {i for i, _ in batches[0]} <= set(range(5))
    with pytest.raises(ValueError):
        sampler([], [])
