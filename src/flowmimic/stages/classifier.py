"""Classifier stage: train the independent genre classifier on real AIST++ train windows, score it on test.

Only real AIST++ sequences of the train split (cached, not bad-listed) are learned from; never model
outputs, never MVHumanNet (no genre). Training windows: `classifier.windows_per_sequence` random crops
of `classifier.seq_len` frames per sequence, drawn once from `classifier.seed` (shorter sequences are
padded and masked). Scoring windows: every full, non-overlapping window of `classifier.seq_len` frames
of every `EVAL_SPLIT` sequence, as evaluate and generate cut them (shorter sequences are counted as
`too_short_for_window`), so this accuracy is the one the generate stage sets its judgements beside.
The classifier is frozen before it is scored.

Writes `classifier.model_path` (the frozen model with its input normalisation) and
`classifier.metrics` (DVC metrics): accuracy with a bootstrap interval, the confusion matrix
(rows true genre, columns predicted), and per-genre accuracy for genres with at least
`motion_metrics.MIN_WINDOWS_PER_GENRE` windows (others: window counts only).

Under `classifier.plots_dir`, `confusion.json`: the test confusion matrix as a DVC plot.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from flowmimic.cache.catalog import CachedSequence, usable_sequences
from flowmimic.errors import DataError
from flowmimic.features import layout
from flowmimic.features.normalize import Normalizer
from flowmimic.io import write_json
from flowmimic.model.classifier import (ClassifierConfig, ClassifierTraining, save_classifier, score_classifier,
                                        train_classifier)
from flowmimic.evaluation.motion_metrics import MIN_WINDOWS_PER_GENRE, bootstrap_mean
from flowmimic.params import Params
from flowmimic.taxonomy import GENRE_NAMES, GENRES
from flowmimic.evaluation.reconstruct import evaluation_keys
from flowmimic.training.windows import MotionWindows

log = logging.getLogger(__name__)

EVAL_SPLIT = "test"
_RAW = Normalizer(np.zeros(layout.DIM), np.ones(layout.DIM))   # identity: the classifier normalises itself


def stack_windows(seqs: list[CachedSequence], keys: list[tuple[int, int]], seq_len: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw windows (N, seq_len, 263), masks (N, seq_len) and genre ids (N,) at `keys` (index, start)."""
    ds = MotionWindows(seqs, seq_len, _RAW)
    items = [ds[k] for k in keys]
    if not items:
        return torch.zeros(0, seq_len, layout.DIM), torch.zeros(0, seq_len, dtype=torch.bool), torch.zeros(0, dtype=torch.long)
    return (torch.stack([it["x"] for it in items]), torch.stack([it["mask"] for it in items]),
            torch.stack([it["genre"] for it in items]))


def random_crop_keys(frames: list[int], seq_len: int, per_sequence: int, seed: int) -> list[tuple[int, int]]:
    """`per_sequence` seeded random window starts per sequence (start 0 when it is shorter than a window)."""
    rng = np.random.default_rng(seed)
    return [(i, int(rng.integers(0, max(n - seq_len, 0) + 1))) for i, n in enumerate(frames) for _ in range(per_sequence)]


def _device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def main(params: Params) -> dict:
    """Train, freeze, score and save the classifier; returns the metrics written."""
    p, paths = params.classifier, (params.cache.dir, params.split.dir, params.validate_.dir)
    train_seqs = [s for s in usable_sequences(*paths, "train", domains=("aist",)) if s.genre_id > 0]
    test_seqs = [s for s in usable_sequences(*paths, EVAL_SPLIT, domains=("aist",)) if s.genre_id > 0]
    if not train_seqs:
        raise DataError(params.split.dir, "no usable AIST++ train sequence with a genre to train the classifier on",
                        "empty")
    keys = random_crop_keys([s.frames for s in train_seqs], p.seq_len, p.windows_per_sequence, p.seed)
    x, mask, genres = stack_windows(train_seqs, keys, p.seq_len)
    config = ClassifierConfig.from_params(p)
    log.info("classifier: %d train windows from %d AIST++ sequences; %d test sequences",
             len(keys), len(train_seqs), len(test_seqs))
    model = train_classifier(x, genres, config, ClassifierTraining.from_params(p), mask, _device(p.device)).cpu()

    metrics: dict = {"train_sequences": len(train_seqs), "train_windows": len(keys), "test_sequences": len(test_seqs)}
    test_keys, too_short = evaluation_keys([s.frames for s in test_seqs], p.seq_len)
    metrics["too_short_for_window"] = len(too_short)
    if test_keys:
        x_t, mask_t, genres_t = stack_windows(test_seqs, test_keys, p.seq_len)
        scores = score_classifier(model, x_t, genres_t, mask_t)
        correct = np.diag(scores.confusion).sum()
        lo, hi = bootstrap_mean(model.predict(x_t, mask_t).eq(genres_t).numpy(), seed=p.seed)
        per_genre = {}
        for g, row in zip(GENRES, scores.confusion):
            n = int(row.sum())
            if n:
                per_genre[g] = ({"windows": n, "accuracy": round(float(row[GENRES.index(g)]) / n, 4)}
                                if n >= MIN_WINDOWS_PER_GENRE else {"windows": n})
        metrics |= {"test_windows": scores.windows, "accuracy": round(scores.accuracy, 4),
                    "accuracy_ci95": [round(lo, 4), round(hi, 4)], "correct": int(correct),
                    "min_windows_per_genre": MIN_WINDOWS_PER_GENRE, "per_genre": per_genre,
                    "confusion": {"genres": list(GENRES), "counts": scores.confusion.tolist()}}
        write_json(Path(p.plots_dir) / "confusion.json",
                   [{"actual": GENRE_NAMES[t], "predicted": GENRE_NAMES[q]} for t in range(len(GENRES))
                    for q in range(len(GENRES)) for _ in range(int(scores.confusion[t, q]))])
        log.info("classifier: test accuracy %.3f [%.3f, %.3f] on %d windows", scores.accuracy, lo, hi, scores.windows)
    else:
        log.warning("classifier: no %s window of %d frames: the classifier is saved unscored", EVAL_SPLIT, p.seq_len)
    save_classifier(p.model_path, model, extra={"metrics": {k: v for k, v in metrics.items() if k != "confusion"
                                                            and k != "per_genre"}})
    write_json(p.metrics, metrics)
    return metrics
