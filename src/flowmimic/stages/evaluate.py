"""Evaluate stage: reconstruct the val splits with the trained VAE; metrics per domain and overall.

Rebuilds the model from the checkpoint's own config (never from current params) and windows the
val sequences the way training validated them (the checkpoint's `seq_len`, deterministic,
non-overlapping). Writes `evaluate.metrics` (DVC metrics: loss parts, contact accuracy/F1, style
accuracy (AIST++), MPJPE unaligned and root-aligned, acceleration error) and, under
`evaluate.plots_dir`, the DVC plots: per-genre MPJPE, the style confusion matrix and a
ground-truth-vs-reconstruction stick-figure GIF per domain.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.utils.data import DataLoader

from flowmimic.cache.catalog import DOMAINS, usable_sequences
from flowmimic.training.checkpoint import load_model
from flowmimic.training.windows import MotionWindows, validation_batches
from flowmimic.evaluation import Accumulator, denormalize_windows, joint_errors
from flowmimic.features import layout
from flowmimic.features.humanml3d import features_to_joints
from flowmimic.features.normalize import Normalizer
from flowmimic.io import write_json
from flowmimic.model.losses import LossWeights, vae_losses
from flowmimic.model.vae import to_features
from flowmimic.params import Params
from flowmimic.taxonomy import GENRE_NAMES, genre_name

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_domain(model, seqs, seq_len: int, batch_size: int, normalizer: Normalizer,
                    weights: LossWeights) -> tuple[Accumulator, tuple[torch.Tensor, torch.Tensor] | None]:
    """Metrics over one domain's val windows, and (GT, recon) joints of its first window for a GIF."""
    acc, example = Accumulator(), None
    if not seqs:
        return acc, example
    loader = DataLoader(MotionWindows(seqs, seq_len, normalizer),
                        batch_sampler=validation_batches([s.frames for s in seqs], seq_len, batch_size))
    for batch in loader:
        x, mask, genre = batch["x"], batch["mask"], batch["genre"]
        out = model(x, mask, batch["domain"], genre, sample=False)                   # posterior mean
        losses = vae_losses(out, x, mask, genre, weights, weights.kl_weight)
        probs = to_features(out.recon)                                               # (B, T, 263)
        pred, target = denormalize_windows(normalizer, probs, x)
        errors = joint_errors(pred, target, mask)
        acc.add({k: v for k, v in losses.items() if k != "kl_weight"}, x.shape[0], probs[..., layout.CONTACTS], x[..., layout.CONTACTS],
                mask, errors, genre, out.style_logits)
        if example is None:
            n = int(mask[0].sum())
            example = (features_to_joints(target[0, :n]), features_to_joints(pred[0, :n]))
    return acc, example


def write_plots(plots_dir: Path, per_domain: dict[str, Accumulator],
                examples: dict[str, tuple | None], gif_frames: int, gif_fps: int) -> None:
    from flowmimic.viz import animate_comparison

    aist = per_domain["aist"]
    write_json(plots_dir / "per_genre_mpjpe.json",
               [{"genre": genre_name(g), "mpjpe_mm": round(v, 2)} for g, v in aist.per_genre_mpjpe().items() if g > 0])
    write_json(plots_dir / "confusion.json",
               [{"actual": GENRE_NAMES[t], "predicted": GENRE_NAMES[p]}
                for t in range(len(GENRE_NAMES)) for p in range(len(GENRE_NAMES)) for _ in range(aist.confusion[t, p])])
    for domain, example in examples.items():
        if example is not None:
            gt, recon = (j[:gif_frames].numpy() for j in example)
            animate_comparison(gt, recon, plots_dir / f"recon_{domain}.gif", fps=gif_fps,
                               title=f"{domain}: ground truth (left) vs reconstruction (right)")


def main(params: Params, checkpoint: str | None = None) -> None:
    """Evaluate `checkpoint` (default `train.model_path`) on the val splits."""
    p = params.evaluate
    torch.set_num_threads(params.train.threads)     # as in training: the thread count changes float results
    path = checkpoint or params.train.model_path
    model, ckpt = load_model(path)
    model.eval()
    train_p = SimpleNamespace(**ckpt["train_params"])
    torch.manual_seed(p.seed)
    normalizer = Normalizer.from_file(params.stats.path)
    seqs = usable_sequences(params.cache.dir, params.split.dir, params.validate_.dir, "val")
    per_domain, examples = {}, {}
    for domain in DOMAINS:
        mine = [s for s in seqs if s.domain == domain]
        per_domain[domain], examples[domain] = evaluate_domain(model, mine, train_p.seq_len, p.batch_size, normalizer,
                                                               LossWeights.from_train_params(train_p))
    overall = Accumulator()
    for acc in per_domain.values():
        overall.merge(acc)
    metrics = {d: acc.summary() for d, acc in per_domain.items()}
    metrics["overall"] = overall.summary()
    metrics["checkpoint"] = {"epoch": ckpt["epoch"], "step": ckpt["step"], "best_epoch": ckpt["best_epoch"]}
    write_plots(Path(p.plots_dir), per_domain, examples, p.gif_frames, p.gif_fps)
    write_json(p.metrics, metrics)
    o = metrics["overall"]
    log.info("evaluate %s: MPJPE %.1f mm (root-aligned %.1f), contact F1 %.3f, style accuracy %s -> %s",
             path, o.get("mpjpe_mm", float("nan")), o.get("mpjpe_root_aligned_mm", float("nan")),
             o.get("contact_f1", float("nan")), metrics["aist"].get("style_accuracy", "n/a"), p.metrics)
