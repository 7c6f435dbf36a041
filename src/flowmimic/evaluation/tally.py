"""Per-sequence sums of evaluation quantities, the figures made from them, and bootstrap intervals.

Every figure of `metrics/eval.json` is a ratio of sums over sequences (e.g. MPJPE = sum of per-frame
errors / frames), so each sequence keeps one row of sums (`COLUMNS`) and any set of sequences --
a domain, all of them, or a bootstrap resample -- is summarised by adding rows. Weighting:

- joint errors and contact counts: per frame (ACCL per interior frame, see `metrics`);
- loss parts: per window (each window's own masked mean, summed, / windows); evaluation windows all
  have the same length, so this equals frame weighting;
- style loss and accuracy: per AIST++ window only (windows of an unknown genre have no style target
  and do not dilute them); `total` is rebuilt from the averaged parts with the training weights.

Intervals: percentile bootstrap over sequences (Efron & Tibshirani 1993): resample the sequences
with replacement (within each domain, so a resample keeps the split's domain mix), recompute the
figure, take the 2.5th and 97.5th percentiles. Sequences, not windows, are resampled because windows
of one sequence are correlated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flowmimic.model.losses import LossWeights, weighted_total

LOSSES: tuple[str, ...] = ("recon", "contact", "kl", "smooth", "joints")
COLUMNS: tuple[str, ...] = ("windows", "frames", "accl_frames", "mpjpe", "mpjpe_root", "pa_mpjpe", "accl",
                            *LOSSES, "style_loss", "style_windows", "style_correct", "tp", "fp", "fn", "tn")
COL = {name: i for i, name in enumerate(COLUMNS)}
CI_LEVEL = 0.95
# Figure name -> decimals in metrics/eval.json.
DECIMALS = {"recon": 6, "contact": 6, "kl": 6, "smooth": 6, "joints": 6, "style": 6, "total": 6, "contact_accuracy": 4,
            "contact_f1": 4, "mpjpe_mm": 2, "mpjpe_root_aligned_mm": 2, "pa_mpjpe_mm": 2,
            "accl_mm_per_frame2": 3, "style_accuracy": 4}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def figures(sums: np.ndarray, weights: LossWeights) -> dict[str, np.ndarray]:
    """Figures from summed rows (..., len(COLUMNS)) -> {name: (...)}; NaN where undefined (no frames,
    no style windows)."""
    c = {name: sums[..., i] for name, i in COL.items()}
    out = {k: _ratio(c[k], c["windows"]) for k in LOSSES}
    has_style = c["style_windows"] > 0
    out["style"] = _ratio(c["style_loss"], c["style_windows"])
    parts = {**out, "style": np.where(has_style, out["style"], 0.0)}
    out["total"] = weighted_total(parts, weights, weights.kl_weight)
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    out["contact_accuracy"] = _ratio(tp + tn, tp + fp + fn + tn)
    out["contact_f1"] = np.where(tp + fp + fn > 0, _ratio(2 * tp, 2 * tp + fp + fn), np.nan)
    out["mpjpe_mm"] = 1000 * _ratio(c["mpjpe"], c["frames"])
    out["mpjpe_root_aligned_mm"] = 1000 * _ratio(c["mpjpe_root"], c["frames"])
    out["pa_mpjpe_mm"] = 1000 * _ratio(c["pa_mpjpe"], c["frames"])
    out["accl_mm_per_frame2"] = 1000 * _ratio(c["accl"], c["accl_frames"])
    out["style_accuracy"] = _ratio(c["style_correct"], c["style_windows"])
    return out


def bootstrap_sums(rows: np.ndarray, strata: Sequence[int], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`resamples` bootstrap draws of the summed rows (resamples, len(COLUMNS)): per stratum, as many
    rows as it holds, drawn with replacement."""
    rows, strata = np.asarray(rows, dtype=np.float64), np.asarray(strata)
    out = np.zeros((resamples, rows.shape[1]))
    for s in np.unique(strata):
        mine = rows[strata == s]
        picks = rng.integers(0, len(mine), size=(resamples, len(mine)))
        out += mine[picks].sum(axis=1)
    return out


def summarize(rows: np.ndarray, strata: Sequence[int], weights: LossWeights, resamples: int,
              rng: np.random.Generator) -> dict:
    """JSON-ready figures of a set of sequences (rows (N, len(COLUMNS))), each with its 95 % interval
    under `ci95` as {"lo", "hi"} (when `resamples` > 0). Figures undefined for this set (e.g. style on MVHumanNet)
    are left out."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(COLUMNS))
    total = rows.sum(0)
    out: dict = {"sequences": len(rows), "windows": int(total[COL["windows"]]), "frames": int(total[COL["frames"]])}
    if out["windows"] == 0:
        return out
    point = figures(total, weights)
    keep = [k for k in DECIMALS if np.isfinite(point[k])]
    out.update({k: round(float(point[k]), DECIMALS[k]) for k in keep})
    if total[COL["style_windows"]] > 0:
        out["style_windows"] = int(total[COL["style_windows"]])
    if resamples > 0:
        draws = figures(bootstrap_sums(rows, strata, resamples, rng), weights)
        alpha = 100 * (1 - CI_LEVEL) / 2
        # {"lo", "hi"} rather than a list: `dvc metrics show/diff` list only numbers found through dicts.
        out["ci95"] = {k: dict(zip(("lo", "hi"), (round(float(v), DECIMALS[k])
                                                   for v in np.nanpercentile(draws[k], [alpha, 100 - alpha]))))
                       for k in keep}
    return out
