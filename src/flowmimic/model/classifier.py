"""The independent genre classifier, top-down in one file: the judge of style for transfers and samples.

A small transformer encoder over 263-D feature windows that predicts the AIST++ genre (ids 1..10).
It is trained only on real AIST++ windows, shares no weights with the VAE and is frozen once trained,
so its verdict on generated motion measures the motion, not the generator. The evaluation protocol
(an action/style recogniser trained on real data judging generated motion) is ACTOR's (Petrovich et
al., ICCV 2021) and Action2Motion's (Guo et al., ACM MM 2020); GenMoStyle (Guo et al., CVPR 2024)
judges style transfer the same way.

It reuses the VAE file's building blocks (`Attention`, `MLP`, `sinusoidal_positions`: imported, not
copied) in plain pre-LayerNorm blocks: nothing here is conditioned, so adaLN has no place.

Input normalisation travels with the model: `train_classifier` fits the mean/std of its own training
windows (through `features.normalize.Normalizer`: contacts stay 0/1) into buffers, so the classifier
takes RAW 263-D features and needs no stats file to judge anything.

Shapes: B windows, T frames, D = d_model. `mask` (B, T) bool is True on real frames.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowmimic.errors import DataError
from flowmimic.io import BAD_PICKLE_ERRORS
from flowmimic.features import layout
from flowmimic.features.normalize import Normalizer
from flowmimic.model.vae import MLP, Attention, sinusoidal_positions
from flowmimic.taxonomy import N_GENRES

log = logging.getLogger(__name__)

CLASSIFIER_VERSION = 1


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything needed to rebuild a `GenreClassifier` (stored in its file as a plain dict)."""

    d_in: int            # feature size (263)
    d_model: int
    n_layers: int
    n_heads: int
    mlp_ratio: float
    dropout: float
    n_genres: int        # outputs for genre ids 1..n_genres

    @classmethod
    def from_params(cls, p, n_genres: int = N_GENRES) -> "ClassifierConfig":
        """Build from the `classifier` section of params.yaml (`flowmimic.params.ClassifierParams`)."""
        return cls(d_in=layout.DIM, d_model=p.d_model, n_layers=p.n_layers, n_heads=p.n_heads,
                   mlp_ratio=p.mlp_ratio, dropout=p.dropout, n_genres=n_genres)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        names = {f.name for f in fields(cls)}
        if set(d) != names:
            raise ValueError(f"classifier config keys {sorted(d)} do not match ClassifierConfig's {sorted(names)}")
        return cls(**d)


@dataclass(frozen=True)
class ClassifierTraining:
    """How `train_classifier` optimises (from the same `classifier` params section)."""

    seed: int
    batch_size: int
    epochs: int
    lr: float
    weight_decay: float
    min_std: float       # floor of the fitted input std

    @classmethod
    def from_params(cls, p) -> "ClassifierTraining":
        return cls(seed=p.seed, batch_size=p.batch_size, epochs=p.epochs, lr=p.lr,
                   weight_decay=p.weight_decay, min_std=p.min_std)


# ----------------------------------------------------------------------------- the model


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, d: int, n_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = Attention(d, n_heads, dropout)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = MLP(d, int(d * mlp_ratio), dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class GenreClassifier(nn.Module):
    """Raw features (B, T, 263) + mask (B, T) -> genre logits (B, n_genres) for ids 1..n_genres.

    Args:
        config: `ClassifierConfig` (from params: `ClassifierConfig.from_params(params.classifier)`;
            from a file: `load_classifier`).
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        assert config.d_model % config.n_heads == 0 and config.d_model % 2 == 0
        self.config = config
        self.register_buffer("feat_mean", torch.zeros(config.d_in))     # input normalisation (fitted)
        self.register_buffer("feat_std", torch.ones(config.d_in))
        self.embed = nn.Linear(config.d_in, config.d_model)
        self.blocks = nn.ModuleList(Block(config.d_model, config.n_heads, config.mlp_ratio, config.dropout)
                                    for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.n_genres)

    def set_normalization(self, normalizer: Normalizer) -> None:
        self.feat_mean.copy_(torch.as_tensor(normalizer.mean))
        self.feat_std.copy_(torch.as_tensor(normalizer.std))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        B, T, _ = x.shape
        x = (x - self.feat_mean) / self.feat_std                                        # (B, T, 263)
        x = torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        h = self.embed(x) + sinusoidal_positions(T, self.config.d_model, x.device)      # (B, T, D)
        for block in self.blocks:
            h = block(h, mask)
        m = mask[..., None].to(h.dtype)                                                 # (B, T, 1)
        pooled = (self.norm(h) * m).sum(1) / m.sum(1).clamp(min=1.0)                   # (B, D)
        return self.head(pooled)                                                        # (B, n_genres)

    @torch.no_grad()
    def predict(self, x: Tensor, mask: Tensor | None = None, batch_size: int = 256) -> Tensor:
        """Genre ids (1..n_genres) of raw feature windows (N, T, 263), in batches: (N,) long."""
        device = self.feat_mean.device
        mask = torch.ones(x.shape[:2], dtype=torch.bool) if mask is None else mask
        out = [self(x[i:i + batch_size].to(device), mask[i:i + batch_size].to(device)).argmax(-1).cpu() + 1
               for i in range(0, x.shape[0], batch_size)]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


# ----------------------------------------------------------------------------- training and scoring


def fit_normalizer(windows: Tensor, mask: Tensor, min_std: float) -> Normalizer:
    """Mean/std over the real frames of raw windows (N, T, 263); std floored at `min_std`."""
    frames = windows[mask].double()                                                     # (frames, 263)
    mean, std = frames.mean(0), frames.std(0, unbiased=False).clamp(min=min_std)
    return Normalizer(mean.numpy(), std.numpy())


def _check_windows(windows: Tensor, genres: Tensor, mask: Tensor | None, n_genres: int) -> Tensor:
    if windows.ndim != 3 or windows.shape[-1] != layout.DIM:
        raise ValueError(f"windows must be (N, T, {layout.DIM}), got {tuple(windows.shape)}")
    if genres.shape != windows.shape[:1]:
        raise ValueError(f"genres must be ({windows.shape[0]},), got {tuple(genres.shape)}")
    if len(genres) and (genres.min() < 1 or genres.max() > n_genres):
        raise ValueError(f"genre ids must lie in 1..{n_genres} (0 = unknown is not a class)")
    mask = torch.ones(windows.shape[:2], dtype=torch.bool) if mask is None else mask.bool()
    if mask.shape != windows.shape[:2] or not mask.any(1).all():
        raise ValueError("mask must be (N, T) with at least one real frame per window")
    if not torch.isfinite(windows[mask]).all():
        raise ValueError("windows hold NaN or infinite values on real frames")
    return mask


def train_classifier(windows: Tensor, genres: Tensor, config: ClassifierConfig, training: ClassifierTraining,
                     mask: Tensor | None = None, device: str | torch.device = "cpu") -> GenreClassifier:
    """Train a classifier on raw feature windows (N, T, 263) with genre ids (N,) in 1..n_genres.

    AdamW with a cosine learning-rate decay over all steps, label cross-entropy, shuffled batches;
    every random draw comes from `training.seed` (the global RNG is restored afterwards). Returns
    the model frozen: eval mode, no parameter requires grad.
    """
    mask = _check_windows(windows, genres, mask, config.n_genres)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(training.seed)
        model = GenreClassifier(config)
        model.set_normalization(fit_normalizer(windows, mask, training.min_std))
        model.to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)
        n = windows.shape[0]
        steps_per_epoch = math.ceil(n / training.batch_size)
        total = steps_per_epoch * training.epochs
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        g = torch.Generator().manual_seed(training.seed)
        for epoch in range(training.epochs):
            order = torch.randperm(n, generator=g)
            total_loss = 0.0
            for i in range(0, n, training.batch_size):
                idx = order[i:i + training.batch_size]
                logits = model(windows[idx].to(device), mask[idx].to(device))
                loss = F.cross_entropy(logits, (genres[idx] - 1).to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total_loss += float(loss.detach()) * len(idx)
            log.debug("classifier epoch %d: loss %.4f", epoch + 1, total_loss / n)
    return freeze(model)


def freeze(model: GenreClassifier) -> GenreClassifier:
    """Eval mode and no gradients: the judge does not change once it judges."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@dataclass(frozen=True)
class ClassifierScores:
    accuracy: float
    confusion: np.ndarray      # (n_genres, n_genres) counts, rows = true genre, columns = predicted
    windows: int

    def to_dict(self) -> dict:
        return {"accuracy": round(self.accuracy, 4), "windows": self.windows, "confusion": self.confusion.tolist()}


def confusion_matrix(true: Tensor, pred: Tensor, n_genres: int = N_GENRES) -> np.ndarray:
    """Counts (n_genres, n_genres) of genre ids 1..n_genres: rows true, columns predicted."""
    idx = (true.long() - 1) * n_genres + (pred.long() - 1)
    return torch.bincount(idx, minlength=n_genres * n_genres).view(n_genres, n_genres).numpy()


def score_classifier(model: GenreClassifier, windows: Tensor, genres: Tensor, mask: Tensor | None = None,
                     batch_size: int = 256) -> ClassifierScores:
    """Accuracy and confusion matrix of the classifier on labelled raw windows (N, T, 263)."""
    mask = _check_windows(windows, genres, mask, model.config.n_genres)
    pred = model.predict(windows, mask, batch_size)
    conf = confusion_matrix(genres, pred, model.config.n_genres)
    n = int(conf.sum())
    return ClassifierScores(accuracy=float(np.trace(conf)) / n if n else 0.0, confusion=conf, windows=n)


# ----------------------------------------------------------------------------- its file


def save_classifier(path: str | Path, model: GenreClassifier, extra: dict | None = None) -> None:
    """Write the frozen classifier atomically: {version, config, model, **extra} (weights-only loadable)."""
    from flowmimic.training.checkpoint import save_checkpoint

    save_checkpoint(path, {"version": CLASSIFIER_VERSION, "kind": "genre_classifier",
                           "config": model.config.to_dict(), "model": model.state_dict(), **(extra or {})})


def load_classifier(path: str | Path, map_location: str | torch.device = "cpu") -> GenreClassifier:
    """Rebuild a frozen classifier from its file; `DataError` naming the file if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "genre classifier not found (run `flowmimic classifier`)", "missing")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except BAD_PICKLE_ERRORS as e:  # truncated, corrupted, refused globals; our own bugs propagate
        raise DataError(path, f"unreadable classifier file ({type(e).__name__}: {e})", "unreadable") from e
    if not isinstance(ckpt, dict) or ckpt.get("kind") != "genre_classifier" or ckpt.get("version") != CLASSIFIER_VERSION:
        raise DataError(path, f"not a version-{CLASSIFIER_VERSION} FlowMimic genre classifier", "invalid")
    try:
        model = GenreClassifier(ClassifierConfig.from_dict(ckpt["config"]))
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise DataError(path, f"file does not rebuild the classifier ({e})", "invalid") from e
    return freeze(model.to(map_location))
