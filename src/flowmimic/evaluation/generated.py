"""Judging sets of generated motion windows: genre accuracy by the frozen classifier, content kept,
the field's distribution metrics and foot skating, each pooled figure with a bootstrap interval.

A set is a batch of raw 263-D feature windows (N, W, 263) at data.fps, every one the same length;
joints come from the features (`features_to_joints`: each window's root starts at its own first
frame, on HumanML3D's target skeleton), so real and generated windows are measured alike.
Intervals are 95 % percentile bootstraps over the windows of the set (`motion_metrics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from flowmimic.body.skeleton import PELVIS
from flowmimic.features import layout
from flowmimic.features.humanml3d import features_to_joints
from flowmimic.model.classifier import GenreClassifier
from flowmimic.evaluation.motion_metrics import (MIN_WINDOWS_PER_GENRE, bootstrap_interval, bootstrap_mean, fid,
                                      fid_and_diversity, foot_skating_counts, geometric_features,
                                      kinetic_features)
from flowmimic.taxonomy import GENRES


@dataclass(frozen=True)
class WindowSet:
    """Windows of one kind (real, transfers, samples) and what the field measures on them."""

    features: Tensor       # (N, W, 263) raw
    joints: Tensor         # (N, W, 22, 3) metres, y-up, window-canonical
    kinetic: Tensor        # (N, 66)
    geometric: Tensor      # (N, 32)

    @classmethod
    def of(cls, features: Tensor, fps: float) -> "WindowSet":
        joints = features_to_joints(features.float())
        return cls(features, joints, kinetic_features(joints, fps), geometric_features(joints, fps))

    def __len__(self) -> int:
        return self.features.shape[0]


def _r(x: float) -> float:
    return round(float(x), 4)


def _ci(lo_hi: tuple[float, float]) -> list[float]:
    return [_r(lo_hi[0]), _r(lo_hi[1])]


def rate_with_interval(hits: np.ndarray, resamples: int, seed: int) -> dict:
    """Share of True in `hits` (N,) with its bootstrap interval."""
    out = {"windows": int(len(hits)), "rate": _r(hits.mean()) if len(hits) else None}
    if len(hits) and resamples:
        out["ci95"] = _ci(bootstrap_mean(hits.astype(np.float64), resamples, seed=seed))
    return out


def per_genre_rates(hits: np.ndarray, genres: np.ndarray) -> dict[str, dict]:
    """Per genre id (1..10): window count, and the rate only with at least MIN_WINDOWS_PER_GENRE windows."""
    out = {}
    for gid, code in enumerate(GENRES, start=1):
        sel = genres == gid
        n = int(sel.sum())
        if n:
            out[code] = {"windows": n, "rate": _r(hits[sel].mean())} if n >= MIN_WINDOWS_PER_GENRE else {"windows": n}
    return out


def judged(judge: GenreClassifier, features: Tensor, target: Tensor, resamples: int, seed: int) -> tuple[dict, np.ndarray]:
    """How often the classifier names `target` (N,) for the windows: pooled rate, interval, per genre."""
    hits = (judge.predict(features.float()) == target).numpy()
    out = rate_with_interval(hits, resamples, seed)
    out["per_genre"] = per_genre_rates(hits, target.numpy())
    return out, hits


def distribution(real: WindowSet, gen: WindowSet, resamples: int, seed: int) -> dict:
    """FID_k, FID_g against `real` (z-scored by it) with intervals over `gen`'s windows; Div_k, Div_g of `gen`."""
    out = {}
    for name, r, g in (("k", real.kinetic, gen.kinetic), ("g", real.geometric, gen.geometric)):
        fd = fid_and_diversity(r, g)
        out[f"fid_{name}"], out[f"div_{name}"] = _r(fd["fid"]), _r(fd["div"])
        if resamples:
            out[f"fid_{name}_ci95"] = _ci(bootstrap_interval(lambda i, r=r, g=g: fid(r, g[i]), len(g), resamples,
                                                             seed=seed))
    return out


def foot_skating(windows: WindowSet, fps: float, resamples: int, seed: int) -> dict:
    """Share of foot-contact steps that skate (`motion_metrics.foot_skating_counts`), pooled over windows."""
    counts = np.array([foot_skating_counts(j, fps) for j in windows.joints], dtype=np.float64)   # (N, 2)
    total = counts.sum(0)
    out = {"rate": _r(total[0] / total[1]) if total[1] else None, "contact_steps": int(total[1])}
    if resamples and total[1]:
        out["ci95"] = _ci(bootstrap_interval(lambda i: counts[i, 0].sum() / max(counts[i, 1].sum(), 1.0),
                                             len(counts), resamples, seed=seed))
    return out


def content_kept(source: WindowSet, output: WindowSet) -> tuple[np.ndarray, np.ndarray]:
    """Per window pair: mean pelvis distance (m) and foot-contact agreement (share of frame x foot labels).

    Both windows are in their own canonical frame (root at x = z = 0 at the window's first frame,
    facing +Z), so the error measures the trajectory, not where the sequence happens to stand.
    """
    root = (output.joints[..., PELVIS, :] - source.joints[..., PELVIS, :]).norm(dim=-1).mean(-1)   # (N,)
    contacts = (output.features[..., layout.CONTACTS] > 0.5) == (source.features[..., layout.CONTACTS] > 0.5)
    return root.double().numpy(), contacts.double().mean((-1, -2)).numpy()


def mean_with_interval(values: np.ndarray, resamples: int, seed: int) -> dict:
    out = {"mean": _r(values.mean()) if len(values) else None}
    if len(values) and resamples:
        out["ci95"] = _ci(bootstrap_mean(values, resamples, seed=seed))
    return out


def acceleration(windows: WindowSet, fps: float, resamples: int, seed: int) -> dict:
    """Mean joint acceleration magnitude (m/s^2, second differences at `fps`) over the set's windows."""
    j = windows.joints.double()
    per_window = ((j[:, 2:] - 2 * j[:, 1:-1] + j[:, :-2]).norm(dim=-1) * fps * fps).mean((1, 2)).numpy()
    return mean_with_interval(per_window, resamples, seed)


def nearest_distances(query: Tensor, reference: Tensor, chunk: int = 256) -> np.ndarray:
    """For each (W, C) window of `query` (N, W, C), the RMS distance to its nearest window of `reference` (M, W, C)."""
    ref = reference.flatten(1).double()
    out = []
    for s in range(0, query.shape[0], chunk):
        q = query[s:s + chunk].flatten(1).double()
        out.append(torch.cdist(q, ref).amin(1) / math.sqrt(ref.shape[1]))
    return torch.cat(out).numpy()


def memorisation(generated: Tensor, real_test: Tensor, train: Tensor, normalize,
                 reconstructed_test: Tensor | None = None, resamples: int = 0, seed: int = 0) -> dict:
    """Are samples nearer to training windows than real unseen windows are?

    Each window's nearest TRAIN window (RMS distance over frames x channels of the features normalised
    by `normalize`, the VAE's normaliser), for the generated windows and for the real test windows;
    `passed`: the generated median is not below the real one; `share_below_real_5th_percentile`: the
    share of near-copies (about 0.05 for a set like the real one).

    The search runs over the channels that make the motion (`layout.MOTION`: root and root-relative
    joint positions, all that `features_to_joints` reads, i.e. the motion the commands write). The
    263-D layout also re-encodes that motion as joint rotations and velocities; a decoder predicts
    those on its own and pulls them towards the data's centre (real test windows through the VAE come
    nearer to the training set there too), which is the decoder's smoothing, not the prior's copying.
    The same comparison over every continuous channel is reported beside it, `all_continuous`.

    `reconstructed_test`, the same real test windows encoded and decoded by the VAE, adds the same
    comparison against a reference that went through the decoder as the samples did
    (`ratio_to_reconstructed`). With `resamples`, `ratio_to_real_ci95` is a 95 % percentile bootstrap
    interval of the ratio, both sets resampled (the median of a few hundred windows moves by several %).
    """
    out = _nearest_train_medians(generated, real_test, train, normalize, reconstructed_test, layout.MOTION,
                                 resamples, seed)
    out["channels"] = "root + root-relative joint positions (layout.MOTION, 67)"
    out["all_continuous"] = _nearest_train_medians(generated, real_test, train, normalize, reconstructed_test,
                                                   layout.CONTINUOUS, resamples, seed)
    return out


def _nearest_train_medians(generated: Tensor, real_test: Tensor, train: Tensor, normalize,
                           reconstructed_test: Tensor | None, channels: slice, resamples: int, seed: int) -> dict:
    """`memorisation`'s figures over one block of normalised channels."""
    def prep(x: Tensor) -> Tensor:
        return normalize(x.float())[..., channels]

    train_n = prep(train)
    gen, real = nearest_distances(prep(generated), train_n), nearest_distances(prep(real_test), train_n)
    g_med, r_med, r_low = float(np.median(gen)), float(np.median(real)), float(np.quantile(real, 0.05))
    extra = {}
    if reconstructed_test is not None:
        c_med = float(np.median(nearest_distances(prep(reconstructed_test), train_n)))
        extra = {"reconstructed_test_median_nn_distance": _r(c_med),
                 "ratio_to_reconstructed": _r(g_med / c_med) if c_med else None,
                 "passed_against_reconstructed": bool(g_med >= c_med)}
    if resamples and r_med:
        rng = np.random.default_rng(seed)
        ratios = [np.median(rng.choice(gen, gen.size)) / np.median(rng.choice(real, real.size)) for _ in range(resamples)]
        extra["ratio_to_real_ci95"] = _ci(np.quantile(ratios, [0.025, 0.975]))
    return {"train_windows": int(train.shape[0]), "median_nn_distance": _r(g_med),
            "real_test_median_nn_distance": _r(r_med), "ratio_to_real": _r(g_med / r_med) if r_med else None,
            "share_below_real_median": _r((gen < r_med).mean()),
            # near-copies: nearer to a train window than all but 5 % of real unseen windows are
            "share_below_real_5th_percentile": _r((gen < r_low).mean()), "passed": bool(g_med >= r_med), **extra}
