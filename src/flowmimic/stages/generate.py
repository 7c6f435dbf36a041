"""Generate stage: transfer, sample and re-label with the trained VAE; judge it all on the test split.

Everything is made with the generation library (`flowmimic.generation.core`: `encode_features`,
`decode_latents`, `sample` -- the functions behind `flowmimic transfer` / `sample`), at
`generate.guidance`, and judged in windows of `evaluate.window_frames` frames by the frozen genre
classifier (`classifier.model_path`, trained on real AIST++ train windows only):

  real          real AIST++ test windows: the classifier's accuracy (the yardstick for the rest);
  transfer      every MVHumanNet test sequence encoded as MVHumanNet and decoded as AIST++ in each
                of the 10 genres; how often the classifier names the target genre, and the content
                kept (pelvis-trajectory error in metres and foot-contact agreement, window by window
                in the window's canonical frame);
  samples       `generate.samples_per_genre` prior samples of one window per genre;
  label_matters up to `generate.label_windows_per_genre` AIST++ test windows per genre, encoded and
                decoded with every OTHER genre label: how often the classifier follows the new label
                (`followed`) or keeps the original (`kept_original`), beside its accuracy on the same
                windows decoded with their own label (`reconstructed_accuracy`);
  floor         the real-vs-real reference: real AIST++ TRAIN windows against the real test windows.

FID_k / FID_g / Div_k / Div_g (`motion_metrics`, z-scored by the real test windows) and foot skating
for every set; 95 % bootstrap intervals over windows on pooled figures; per-genre figures only for
genres with at least `motion_metrics.MIN_WINDOWS_PER_GENRE` windows (counts otherwise).

Writes `generate.metrics` (DVC metrics); under `generate.plots_dir`, `transfer_grid.gif` (the first
MVHumanNet test sequence and its transfers to `generate.gif_genres`) and `transfer_confusion.json`;
and `generate.grid`, the GIF's joints (`scripts/render_transfer.py` draws the README's picture from it).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from flowmimic.cache.catalog import CachedSequence, usable_sequences
from flowmimic.errors import DataError
from flowmimic.evaluation.generated import (WindowSet, content_kept, distribution, foot_skating, judged,
                                            mean_with_interval)
from flowmimic.evaluation.reconstruct import evaluation_keys
from flowmimic.generation.checkpoint import load_generation_model
from flowmimic.generation.core import decode_latents, encode_features, sample
from flowmimic.io import save_npz, write_json
from flowmimic.model.classifier import load_classifier
from flowmimic.evaluation.motion_metrics import MIN_WINDOWS_PER_GENRE, diversity, zscore_by_real
from flowmimic.params import Params
from flowmimic.stages.classifier import stack_windows
from flowmimic.taxonomy import GENRE_NAMES, N_GENRES, genre_name, parse_genre

log = logging.getLogger(__name__)


def _windows(seqs: list[CachedSequence], window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every full non-overlapping window of `seqs`: raw features (N, W, 263) and genre ids (N,)."""
    keys, _ = evaluation_keys([s.frames for s in seqs], window)
    x, _, genres = stack_windows(seqs, keys, window)
    return x, genres


def _cut(features: torch.Tensor, window: int) -> torch.Tensor:
    """(B, N, 263) sequences -> (B * K, W, 263): each cut into its K full non-overlapping windows."""
    k = features.shape[1] // window
    return features[:, :k * window].reshape(features.shape[0] * k, window, features.shape[-1])


def _pick_per_genre(genres: torch.Tensor, per_genre: int, seed: int) -> torch.Tensor:
    """Indices of up to `per_genre` windows of each genre, drawn without replacement (seeded)."""
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(genres.numpy() == g))[:per_genre] for g in range(1, N_GENRES + 1)]
    return torch.from_numpy(np.sort(np.concatenate(picked))).long()


def _transfers(gm, seqs: list[CachedSequence], guidance: float) -> list[torch.Tensor]:
    """Each MVHumanNet sequence -> its 10 transfers (10, N, 263), genre g at row g - 1."""
    genres = list(range(1, N_GENRES + 1))
    out = []
    for seq in seqs:
        z = encode_features(gm, torch.from_numpy(np.asarray(seq.load(), dtype=np.float32))[None], "mvh")
        out.append(decode_latents(gm, z.expand(N_GENRES, -1, -1), "aist", genres, guidance))
    return out


def _div(features: torch.Tensor) -> float:
    """Diversity of the real set in its own z-scored space (the yardstick for Div_k / Div_g)."""
    return round(diversity(zscore_by_real(features)[0]), 4)


def main(params: Params) -> dict:
    """Generate, judge and write the metrics (see the module docstring); returns them."""
    p, fps, window = params.generate, float(params.data.fps), params.evaluate.window_frames
    torch.set_num_threads(params.train.threads)
    started = time.perf_counter()
    paths = (params.cache.dir, params.split.dir, params.validate_.dir)
    aist_test = [s for s in usable_sequences(*paths, "test", domains=("aist",)) if s.genre_id > 0]
    aist_train = [s for s in usable_sequences(*paths, "train", domains=("aist",)) if s.genre_id > 0]
    mvh_test = [s for s in usable_sequences(*paths, "test", domains=("mvh",)) if s.frames >= window]
    if not aist_test or not mvh_test:
        raise DataError(params.split.dir, f"generate needs AIST++ and MVHumanNet test sequences of at least "
                        f"{window} frames (got {len(aist_test)} and {len(mvh_test)})", "empty")
    gm = load_generation_model(params.train.model_path)
    judge = load_classifier(params.classifier.model_path)
    seed, boot = p.seed, p.bootstrap

    x_real, g_real = _windows(aist_test, window)
    real = WindowSet.of(x_real, fps)
    floor = WindowSet.of(_windows(aist_train, window)[0], fps)
    real_acc, _ = judged(judge, x_real, g_real, boot, seed)

    # Transfers: every MVHumanNet test sequence to each genre, judged window by window.
    sources, outputs, targets = [], [], []
    full = _transfers(gm, mvh_test, p.guidance)
    for seq, out in zip(mvh_test, full):
        src = _cut(torch.from_numpy(np.asarray(seq.load(), dtype=np.float32))[None], window)      # (K, W, 263)
        sources.append(src.repeat(N_GENRES, 1, 1))
        outputs.append(_cut(out, window))                                                     # (10K, W, 263)
        targets.append(torch.arange(1, N_GENRES + 1).repeat_interleave(src.shape[0]))
    src_set, transfer = WindowSet.of(torch.cat(sources), fps), WindowSet.of(torch.cat(outputs), fps)
    t_target = torch.cat(targets)
    transfer_acc, _ = judged(judge, transfer.features, t_target, boot, seed)
    root_err, contact_agree = content_kept(src_set, transfer)

    # Prior samples: one window each, `samples_per_genre` per genre.
    samples = [sample(gm, params, g, seconds=window / fps, n=p.samples_per_genre, seed=seed + g, guidance=p.guidance)
               for g in range(1, N_GENRES + 1)]
    s_feats = torch.stack([torch.from_numpy(m.features) for ms in samples for m in ms])
    s_target = torch.arange(1, N_GENRES + 1).repeat_interleave(p.samples_per_genre)
    sampled = WindowSet.of(s_feats, fps)
    sample_acc, _ = judged(judge, sampled.features, s_target, boot, seed)

    # Label matters: real test windows decoded with their own label and with each other label.
    pick = _pick_per_genre(g_real, p.label_windows_per_genre, seed)
    z = encode_features(gm, x_real[pick], "aist")                                             # (n, W, Z)
    own = g_real[pick]
    others = torch.stack([torch.tensor([g for g in range(1, N_GENRES + 1) if g != int(o)]) for o in own])   # (n, 9)
    relabel = decode_latents(gm, z.repeat_interleave(N_GENRES - 1, 0), "aist", others.flatten().tolist(), p.guidance)
    relabel_pred = judge.predict(relabel)
    label_matters, _ = judged(judge, relabel, others.flatten(), boot, seed)
    recon_acc, _ = judged(judge, decode_latents(gm, z, "aist", own.tolist(), p.guidance), own, boot, seed)

    real_rate = real_acc["rate"]
    metrics = {
        "settings": {"window_frames": window, "guidance": p.guidance, "samples_per_genre": p.samples_per_genre,
                     "label_windows_per_genre": p.label_windows_per_genre, "bootstrap": boot,
                     "min_windows_per_genre": MIN_WINDOWS_PER_GENRE,
                     "interval": "95% percentile bootstrap over windows",
                     "features": "kinetic 66-D / geometric 32-D on 22 joints at 60 fps, z-scored by the real "
                                 "test windows: not comparable with published AIST++ tables"},
        "real": {"classifier_accuracy": real_acc, "div_k": _div(real.kinetic), "div_g": _div(real.geometric),
                 "foot_skating": foot_skating(real, fps, boot, seed)},
        "floor": {"what": "real AIST++ train windows against the real test windows", "windows": len(floor),
                  **distribution(real, floor, boot, seed)},
        "transfer": {"sources": len(mvh_test), "classified_as_target": transfer_acc,
                     "relative_to_real": round(transfer_acc["rate"] / real_rate, 4) if real_rate else None,
                     "root_trajectory_error_m": mean_with_interval(root_err, boot, seed),
                     "foot_contact_agreement": mean_with_interval(contact_agree, boot, seed),
                     **distribution(real, transfer, boot, seed), "foot_skating": foot_skating(transfer, fps, boot, seed)},
        "samples": {"classified_as_genre": sample_acc, **distribution(real, sampled, boot, seed),
                    "foot_skating": foot_skating(sampled, fps, boot, seed)},
        "label_matters": {"source_windows": int(len(pick)), "followed": label_matters,
                          "kept_original": round(float((relabel_pred == own.repeat_interleave(N_GENRES - 1)).float()
                                                       .mean()), 4),
                          "reconstructed_accuracy": recon_acc},
    }
    _write_plots(Path(p.plots_dir), p, mvh_test[0], full[0], transfer, t_target, judge)
    write_json(p.metrics, metrics)
    log.info("generate: classifier on real test %.3f; transfers as target %.3f (%s x real); label followed "
             "%.3f; samples as genre %.3f; root trajectory error %.3f m; %.1f s -> %s", real_rate,
             transfer_acc["rate"], metrics["transfer"]["relative_to_real"], label_matters["rate"],
             sample_acc["rate"], metrics["transfer"]["root_trajectory_error_m"]["mean"],
             time.perf_counter() - started, p.metrics)
    return metrics


def _write_plots(plots_dir: Path, p, seq: CachedSequence, transfers: torch.Tensor, transfer: WindowSet,
                 target: torch.Tensor, judge) -> None:
    """The transfers' confusion (target vs predicted genre) and the grid GIF of `seq` and three transfers."""
    from flowmimic.features.humanml3d import features_to_joints
    from flowmimic.viz import animate_panels

    pred = judge.predict(transfer.features.float())
    write_json(plots_dir / "transfer_confusion.json",
               [{"target": GENRE_NAMES[int(t) - 1], "predicted": GENRE_NAMES[int(q) - 1]} for t, q in zip(target, pred)])
    source = torch.from_numpy(np.asarray(seq.load(), dtype=np.float32))[: p.gif_frames]
    genres = [parse_genre(g) for g in p.gif_genres]
    panels = [(features_to_joints(source).numpy(), "MVHumanNet source")]
    panels += [(features_to_joints(transfers[g - 1, : p.gif_frames]).numpy(), f"as {genre_name(g)}") for g in genres]
    save_npz(p.grid, joints=np.stack([j for j, _ in panels]).astype(np.float32),
             labels=np.array([label for _, label in panels]), source=np.array(seq.id))
    animate_panels(panels, plots_dir / "transfer_grid.gif", fps=p.gif_fps,
                   title=f"{seq.id}: transferred to three AIST++ genres")
