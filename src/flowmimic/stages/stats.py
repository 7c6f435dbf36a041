"""Stats stage: mean/std of the 263-D features over the train splits, blended across domains.

One streaming pass in float64: each sequence's count/mean/sum of squared deviations is merged into
its domain's running totals with Chan et al.'s parallel update (numerically stable, memory of one
sequence). Domains are then blended as a mixture weighted by `stats.domain_weights` (normalised
over the domains present): mean = sum w_d mu_d, var = sum w_d (var_d + (mu_d - mean)^2). Contacts
[259:263] keep mean 0, std 1. `stats.group_std` replaces each HumanML3D group's std by the group's
mean std (HumanML3D's normalisation); `stats.min_std` floors the std. Sequences with NaN/Inf are
skipped and counted. Writes `stats.path` (npz: mean, std, and per-domain mean_/std_/frames_).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from flowmimic.cache.catalog import DOMAINS, usable_sequences
from flowmimic.errors import DataError
from flowmimic.features import layout
from flowmimic.io import save_npz
from flowmimic.params import Params

log = logging.getLogger(__name__)


@dataclass
class RunningMoments:
    """Count, mean and sum of squared deviations of (N, D) batches, merged one batch at a time."""

    dim: int
    count: int = 0
    mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    m2: np.ndarray = field(default=None)    # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.mean = np.zeros(self.dim)
        self.m2 = np.zeros(self.dim)

    def update(self, x: np.ndarray) -> None:
        x = x.astype(np.float64)
        n_b = x.shape[0]
        if n_b == 0:
            return
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta ** 2 * (self.count * n_b / n)
        self.count = n

    @property
    def var(self) -> np.ndarray:
        return self.m2 / max(self.count, 1)


def blend(moments: dict[str, RunningMoments], weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    present = {d: w for d, w in weights.items() if d in moments and moments[d].count > 0 and w > 0}
    if not present:
        raise ValueError("no domain with both frames and a positive weight")
    total = sum(present.values())
    w = {d: v / total for d, v in present.items()}
    mean = sum(w[d] * moments[d].mean for d in w)
    var = sum(w[d] * (moments[d].var + (moments[d].mean - mean) ** 2) for d in w)
    return mean, np.sqrt(var)


def finalize_std(std: np.ndarray, group_std: bool, min_std: float) -> np.ndarray:
    std = std.copy()
    if group_std:
        for _, sl in layout.STD_GROUPS:
            std[sl] = std[sl].mean()
    return np.maximum(std, min_std)


def main(params: Params) -> None:
    """Compute and save the blended train statistics."""
    p = params.stats
    seqs = usable_sequences(params.cache.dir, params.split.dir, params.validate_.dir, "train")
    cont = layout.CONTINUOUS
    moments = {d: RunningMoments(cont.stop) for d in DOMAINS}
    skipped = 0
    for seq in tqdm(seqs, desc="stats", unit="seq"):
        feats = seq.load()
        if not np.isfinite(feats).all():
            skipped += 1
            log.warning("stats: skipped %s/%s: NaN/Inf in cached features", seq.domain, seq.id)
            continue
        moments[seq.domain].update(feats[:, cont])
    try:
        mean_c, std_c = blend(moments, dict(p.domain_weights))
    except ValueError as e:
        raise DataError(params.cache.dir, f"cannot compute stats: {e} (train sequences: {len(seqs)})", "empty") from None
    mean = np.zeros(layout.DIM)
    std = np.ones(layout.DIM)                      # contacts stay 0/1: mean 0, std 1
    mean[cont], std[cont] = mean_c, finalize_std(std_c, p.group_std, p.min_std)
    extra = {}
    for d, m in moments.items():
        extra[f"mean_{d}"], extra[f"std_{d}"] = m.mean.astype(np.float32), np.sqrt(m.var).astype(np.float32)
        extra[f"frames_{d}"] = np.array(m.count)
    save_npz(p.path, mean=mean.astype(np.float32), std=std.astype(np.float32), skipped=np.array(skipped), **extra)
    log.info("stats: %s frames (%s), %d sequences skipped -> %s",
             sum(m.count for m in moments.values()), {d: m.count for d, m in moments.items()}, skipped, p.path)
