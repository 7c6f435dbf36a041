"""Evaluate stage: reconstruct the held-out test split (and val) with the trained VAE.

Rebuilds the model from the checkpoint's own config (never from current params). Sequences are cut
into fixed windows of `evaluate.window_frames` frames, independent of the training `seq_len`; a
model trained on shorter windows reconstructs them chunk by chunk (`evaluation.reconstruct`).

Writes `evaluate.metrics` (DVC metrics)::

    {"test": {"aist": {...}, "mvh": {...}, "overall": {...}},    <- the reported figures
     "val":  {...same...},                                        <- what model selection saw
     "settings": {"window_frames", "model_window", "bootstrap", "interval"},
     "checkpoint": {"epoch", "step", "best_epoch"}}

Each part holds the loss parts, contact accuracy/F1, style accuracy (AIST++), MPJPE raw and
root-aligned, PA-MPJPE and ACCL (`evaluation.metrics`), counts, and `ci95`: a 95 % bootstrap
interval over sequences for every figure (`evaluation.tally`). Under `evaluate.plots_dir`, the DVC
plots of the test split: per-genre MPJPE, the style confusion matrix and a ground-truth-vs-
reconstruction stick-figure GIF per domain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch.utils.data import DataLoader

from flowmimic.cache.catalog import DOMAINS, CachedSequence, usable_sequences
from flowmimic.evaluation.metrics import joint_errors
from flowmimic.evaluation.reconstruct import denormalize_windows, evaluation_keys, reconstruct
from flowmimic.evaluation.tally import COL, COLUMNS, LOSSES, summarize
from flowmimic.features import layout
from flowmimic.features.humanml3d import features_to_joints
from flowmimic.features.normalize import Normalizer
from flowmimic.io import write_json
from flowmimic.model.losses import LossWeights, vae_losses
from flowmimic.model.vae import VAEOutput, to_features
from flowmimic.params import Params
from flowmimic.taxonomy import GENRE_NAMES, N_GENRES, genre_name
from flowmimic.training.checkpoint import load_model
from flowmimic.training.windows import MotionWindows

log = logging.getLogger(__name__)
REPORTED_SPLITS = ("test", "val")      # test first: the figures a reader should quote


@dataclass
class SplitResult:
    """Per-sequence sums (rows aligned with `seqs`), the style confusion and a GIF window per domain."""

    seqs: list[CachedSequence]
    rows: np.ndarray
    too_short: list[int]
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((N_GENRES, N_GENRES), dtype=np.int64))
    examples: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


def _window_row(out: VAEOutput, b: int, x: torch.Tensor, mask: torch.Tensor, genre: torch.Tensor,
                errors: dict[str, torch.Tensor], probs: torch.Tensor, weights: LossWeights,
                normalizer: Normalizer) -> np.ndarray:
    """The `tally.COLUMNS` sums of window `b` of a batch."""
    row = np.zeros(len(COLUMNS))
    T = x.shape[1]
    row[COL["windows"]], row[COL["frames"]], row[COL["accl_frames"]] = 1, T, max(T - 2, 0)
    for k in ("mpjpe", "mpjpe_root", "pa_mpjpe", "accl"):
        row[COL[k]] = float(errors[k][b].sum())
    one = VAEOutput(out.recon[b:b + 1], out.mu[b:b + 1], out.logvar[b:b + 1],
                    None if out.style_logits is None else out.style_logits[b:b + 1])
    losses = vae_losses(one, x[b:b + 1], mask[b:b + 1], genre[b:b + 1], weights, weights.kl_weight,
                        normalizer.denormalize)
    for k in LOSSES:
        row[COL[k]] = float(losses[k])
    pred, true = probs[b, :, layout.CONTACTS] > 0.5, x[b, :, layout.CONTACTS] > 0.5
    row[COL["tp"]], row[COL["fp"]] = int((pred & true).sum()), int((pred & ~true).sum())
    row[COL["fn"]], row[COL["tn"]] = int((~pred & true).sum()), int((~pred & ~true).sum())
    if out.style_logits is not None and int(genre[b]) > 0:
        row[COL["style_loss"]], row[COL["style_windows"]] = float(losses["style"]), 1
        row[COL["style_correct"]] = int(out.style_logits[b].argmax()) == int(genre[b]) - 1
    return row


@torch.no_grad()
def evaluate_sequences(model: torch.nn.Module, seqs: list[CachedSequence], window: int, model_window: int,
                       batch_size: int, normalizer: Normalizer, weights: LossWeights) -> SplitResult:
    """Reconstruct every fixed window of `seqs`; per-sequence sums of every evaluated quantity."""
    keys, too_short = evaluation_keys([s.frames for s in seqs], window)
    result = SplitResult(seqs=seqs, rows=np.zeros((len(seqs), len(COLUMNS))), too_short=too_short)
    batches = [keys[i:i + batch_size] for i in range(0, len(keys), batch_size)]
    loader = DataLoader(MotionWindows(seqs, window, normalizer), batch_sampler=batches)
    for batch_keys, batch in zip(batches, loader):
        x, mask, genre, domain = batch["x"], batch["mask"], batch["genre"], batch["domain"]
        out = reconstruct(model, x, mask, domain, genre, model_window)
        probs = to_features(out.recon)                                               # (B, T, 263)
        pred, target = denormalize_windows(normalizer, probs, x)
        errors = joint_errors(pred, target)
        for b, (seq_index, _) in enumerate(batch_keys):
            row = _window_row(out, b, x, mask, genre, errors, probs, weights, normalizer)
            result.rows[seq_index] += row
            if row[COL["style_windows"]]:
                result.confusion[int(genre[b]) - 1, int(out.style_logits[b].argmax())] += 1
            name = DOMAINS[int(domain[b])]
            if name not in result.examples:
                result.examples[name] = (features_to_joints(target[b]), features_to_joints(pred[b]))
    return result


def report(result: SplitResult, weights: LossWeights, resamples: int, seed: int, split_no: int) -> dict:
    """Figures with intervals per domain and overall; sequences too short for a window are counted."""
    evaluated = [i for i in range(len(result.seqs)) if result.rows[i, COL["windows"]] > 0]
    domain_ids = np.array([result.seqs[i].domain_id for i in evaluated], dtype=np.int64)
    rows = result.rows[evaluated]
    out = {}
    for d, name in enumerate(DOMAINS):
        rng = np.random.default_rng([seed, split_no, d])
        out[name] = summarize(rows[domain_ids == d], domain_ids[domain_ids == d], weights, resamples, rng)
        out[name]["too_short_for_window"] = sum(1 for i in result.too_short if result.seqs[i].domain_id == d)
    rng = np.random.default_rng([seed, split_no, len(DOMAINS)])
    out["overall"] = summarize(rows, domain_ids, weights, resamples, rng)
    out["overall"]["too_short_for_window"] = len(result.too_short)
    return out


def per_genre_mpjpe(result: SplitResult) -> dict[int, float]:
    """AIST++ genre id -> raw MPJPE in mm, for genres with frames."""
    sums: dict[int, np.ndarray] = {}
    for seq, row in zip(result.seqs, result.rows):
        if seq.genre_id > 0 and row[COL["frames"]] > 0:
            sums[seq.genre_id] = sums.get(seq.genre_id, 0) + row[[COL["mpjpe"], COL["frames"]]]
    return {g: 1000 * s[0] / s[1] for g, s in sorted(sums.items())}


def write_plots(plots_dir: Path, result: SplitResult, gif_frames: int, gif_fps: int) -> None:
    from flowmimic.viz import animate_comparison

    write_json(plots_dir / "per_genre_mpjpe.json",
               [{"genre": genre_name(g), "mpjpe_mm": round(v, 2)} for g, v in per_genre_mpjpe(result).items()])
    write_json(plots_dir / "confusion.json",
               [{"actual": GENRE_NAMES[t], "predicted": GENRE_NAMES[p]}
                for t in range(len(GENRE_NAMES)) for p in range(len(GENRE_NAMES))
                for _ in range(result.confusion[t, p])])
    for domain, example in result.examples.items():
        gt, recon = (j[:gif_frames].numpy() for j in example)
        animate_comparison(gt, recon, plots_dir / f"recon_{domain}.gif", fps=gif_fps,
                           title=f"{domain}: ground truth (left) vs reconstruction (right)")


def main(params: Params, checkpoint: str | None = None) -> None:
    """Evaluate `checkpoint` (default `train.model_path`) on the test and val splits."""
    p = params.evaluate
    torch.set_num_threads(params.train.threads)     # as in training: the thread count changes float results
    path = checkpoint or params.train.model_path
    model, ckpt = load_model(path)
    model.eval()
    train_p = SimpleNamespace(**ckpt["train_params"])
    weights = LossWeights.from_train_params(train_p)
    torch.manual_seed(p.seed)
    normalizer = Normalizer.from_file(params.stats.path)
    metrics: dict = {}
    results: dict[str, SplitResult] = {}
    for split_no, split in enumerate(REPORTED_SPLITS):
        seqs = usable_sequences(params.cache.dir, params.split.dir, params.validate_.dir, split)
        results[split] = evaluate_sequences(model, seqs, p.window_frames, train_p.seq_len, p.batch_size,
                                            normalizer, weights)
        metrics[split] = report(results[split], weights, p.bootstrap, p.seed, split_no)
        if results[split].too_short:
            log.warning("evaluate %s: %d sequences shorter than evaluate.window_frames=%d are left out (counted "
                        "as too_short_for_window)", split, len(results[split].too_short), p.window_frames)
    metrics["settings"] = {"window_frames": p.window_frames, "model_window": train_p.seq_len,
                           "bootstrap": p.bootstrap,
                           "interval": "95% percentile bootstrap over sequences, resampled within each domain"}
    metrics["checkpoint"] = {"epoch": ckpt["epoch"], "step": ckpt["step"], "best_epoch": ckpt["best_epoch"]}
    write_plots(Path(p.plots_dir), results["test"], p.gif_frames, p.gif_fps)
    write_json(p.metrics, metrics)
    o = metrics["test"]["overall"]
    ci = o.get("ci95", {})

    def fig(key: str) -> str:
        if key not in o:
            return "n/a"
        return f"{o[key]}" + (f" [{ci[key]['lo']}, {ci[key]['hi']}]" if key in ci else "")

    log.info("evaluate %s on test (%d-frame windows): MPJPE root-aligned %s mm, raw %s mm, PA-MPJPE %s mm, "
             "contact F1 %s -> %s", path, p.window_frames, fig("mpjpe_root_aligned_mm"), fig("mpjpe_mm"),
             fig("pa_mpjpe_mm"), fig("contact_f1"), p.metrics)
