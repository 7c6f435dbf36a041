"""Training windows over the feature cache, and the domain-balanced (DDP-aware) batch sampler.

An item is addressed by a key ``(sequence index, start frame)`` and is a window of `seq_len` frames,
normalised with the stats file; sequences (or last windows) shorter than `seq_len` are zero-padded
and the padding is marked in the mask. Who chooses the keys decides training vs validation:

- training: `BalancedBatchSampler` draws the epoch's items with a generator seeded by
  (seed, epoch) -- identical on every rank, then shared out -- and each rank's random crops with one
  seeded by (seed, epoch, rank), so an epoch is the same whether or not the run was resumed;
- validation: `validation_batches` lists every sequence's non-overlapping windows in order.

Arrays are read with ``np.load(mmap_mode="r")`` per item, so only the windows in use are paged in
(MVHumanNet does not fit in RAM); the OS page cache keeps hot files fast.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from flowmimic.cache.catalog import DOMAINS, CachedSequence
from flowmimic.errors import DataError
from flowmimic.features import layout
from flowmimic.features.normalize import Normalizer

Key = tuple[int, int]   # (sequence index, start frame)
AIST, MVH = DOMAINS.index("aist"), DOMAINS.index("mvh")


class MotionWindows(Dataset):
    """Windows of cached sequences, addressed by `Key`.

    Args:
        sequences: the usable sequences of a split (`catalog.usable_sequences`).
        seq_len: window length T in feature frames.
        normalizer: stats-file normalisation (contacts untouched).

    Item: dict with ``x`` (T, 263) float32 normalised (zeros on padding), ``mask`` (T,) bool
    (True = real frame), ``domain`` and ``genre`` (long scalars).
    """

    def __init__(self, sequences: Sequence[CachedSequence], seq_len: int, normalizer: Normalizer) -> None:
        self.sequences = list(sequences)
        self.seq_len = seq_len
        self.normalizer = normalizer

    def __len__(self) -> int:
        return len(self.sequences)

    def read_window(self, index: int, start: int) -> np.ndarray:
        """Raw features of up to `seq_len` frames from `start`: (t <= T, 263) float32."""
        path = Path(self.sequences[index].path)
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(path, f"unreadable cached features ({e})", "unreadable") from e
        if arr.ndim != 2 or arr.shape[1] != layout.DIM:
            raise DataError(path, f"cached features must be (frames, {layout.DIM}), got {arr.shape}", "shape")
        return np.array(arr[start:start + self.seq_len], dtype=np.float32)

    def __getitem__(self, key: Key) -> dict[str, torch.Tensor]:
        index, start = key
        seq = self.sequences[index]
        window = self.normalizer.normalize(self.read_window(index, start))            # (t, 263)
        t = window.shape[0]
        if t == 0:
            raise DataError(seq.path, f"no frames from {start} on (the index says {seq.frames} frames)", "shape")
        x = np.zeros((self.seq_len, layout.DIM), dtype=np.float32)                     # (T, 263)
        x[:t] = window
        mask = np.zeros(self.seq_len, dtype=bool)
        mask[:t] = True
        return {"x": torch.from_numpy(x), "mask": torch.from_numpy(mask),
                "domain": torch.tensor(seq.domain_id, dtype=torch.long),
                "genre": torch.tensor(seq.genre_id, dtype=torch.long)}


# ----------------------------------------------------------------------------- validation windows


def validation_keys(frames: Sequence[int], seq_len: int) -> list[Key]:
    """Every sequence cut into consecutive non-overlapping windows (the last one padded)."""
    return [(i, s) for i, n in enumerate(frames) for s in range(0, max(int(n), 1), seq_len)]


def validation_batches(frames: Sequence[int], seq_len: int, batch_size: int,
                       rank: int = 0, world_size: int = 1) -> list[list[Key]]:
    """This rank's share (every `world_size`-th window) of the validation windows, in batches."""
    keys = validation_keys(frames, seq_len)[rank::world_size]
    return [keys[i:i + batch_size] for i in range(0, len(keys), batch_size)]


# ----------------------------------------------------------------------------- balanced sampler


def _seed(*parts: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(p) for p in parts]))


class BalancedBatchSampler(Sampler[list[Key]]):
    """Domain-balanced training batches of `Key`s, sharded over DDP ranks (the seed's sampler).

    Per epoch: AIST++ contributes ``windows_per_sequence`` items per sequence; MVHumanNet is
    subsampled to ``round(mvh_epoch_ratio x`` that count``)`` items (all of its
    ``windows_per_sequence x`` sequences when AIST++ is empty). The items of both domains are
    interleaved at evenly spread (jittered) positions, so every batch holds each domain in its epoch
    share, then cut into batches; rank r takes batches r, r + world, ... The plan is padded by
    wrapping around (as `DistributedSampler`) so every rank gets the same number of full batches.

    Args:
        frames: (N,) frames per sequence; domain_ids: (N,) domain id per sequence (catalog order).
        batch_size: per-rank batch size; seq_len: window length (random crop range).
        seed: the training seed; rank / world_size: this process's DDP place.
    Call `set_epoch(epoch)` before iterating (as with `DistributedSampler`).
    """

    def __init__(self, frames: Sequence[int], domain_ids: Sequence[int], *, batch_size: int, seq_len: int,
                 windows_per_sequence: int, mvh_epoch_ratio: float, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        if len(frames) != len(domain_ids):
            raise ValueError("frames and domain_ids must have the same length")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.frames = np.asarray(frames, dtype=np.int64)
        domain_ids = np.asarray(domain_ids, dtype=np.int64)
        self.pools = {d: np.repeat(np.flatnonzero(domain_ids == d), windows_per_sequence)
                      for d in range(len(DOMAINS))}
        n_aist = len(self.pools[AIST])
        n_mvh = round(mvh_epoch_ratio * n_aist) if n_aist else len(self.pools[MVH])
        self.counts = {AIST: n_aist, MVH: n_mvh if len(self.pools[MVH]) else 0}
        self.n_items = sum(self.counts.values())
        if self.n_items == 0:
            raise ValueError("no training sequences to sample from")
        self.batch_size, self.seq_len, self.seed = batch_size, seq_len, seed
        self.rank, self.world_size = rank, world_size
        self.batches_per_rank = math.ceil(self.n_items / (batch_size * world_size))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_rank

    def _domain_items(self, rng: np.random.Generator, domain: int) -> np.ndarray:
        pool, n = self.pools[domain], self.counts[domain]
        if n <= len(pool):
            return rng.choice(pool, size=n, replace=False)
        reps = math.ceil(n / len(pool))                     # oversample: whole shuffled passes, cut
        return np.concatenate([rng.permutation(pool) for _ in range(reps)])[:n]

    def epoch_plan(self, epoch: int) -> np.ndarray:
        """All ranks' batches of sequence indices for `epoch`: (world_size x batches_per_rank, B)."""
        rng = _seed(self.seed, epoch)
        items, positions = [], []
        for d in sorted(self.counts):
            n = self.counts[d]
            items.append(self._domain_items(rng, d))
            positions.append((np.arange(n) + rng.random(n)) / max(n, 1))  # one item per 1/n of the epoch
        order = np.argsort(np.concatenate(positions), kind="stable")
        seqs = np.concatenate(items)[order]
        slots = self.batches_per_rank * self.world_size * self.batch_size
        seqs = np.resize(seqs, slots)                      # wrap around to fill every rank's last batch
        return seqs.reshape(-1, self.batch_size)

    def __iter__(self) -> Iterator[list[Key]]:
        mine = self.epoch_plan(self.epoch)[self.rank::self.world_size]                 # (batches, B)
        rng = _seed(self.seed, self.epoch, self.rank)
        span = np.maximum(self.frames[mine] - self.seq_len, 0) + 1                     # crop starts per item
        starts = (rng.random(mine.shape) * span).astype(np.int64)
        for seqs, st in zip(mine.tolist(), starts.tolist()):
            yield list(zip(seqs, st))
