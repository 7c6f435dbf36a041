"""The pieces of the training loop; `flowmimic.stages.train` wires them together.

Reproducibility: every RNG the loop uses (dropout, reparameterisation, the sampler's plan and
crops) is reseeded from (seed, epoch, rank) at the start of each epoch, so a run resumed from a
checkpoint written at an epoch boundary continues exactly as the uninterrupted run would have, with
no RNG state in the checkpoint.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from flowmimic.cache.catalog import DOMAINS, FIT_SPLITS, bad_list_path, index_path, split_path, usable_sequences
from flowmimic.training.windows import BalancedBatchSampler, MotionWindows, validation_batches
from flowmimic.training.distributed import DistInfo, reduce_mean
from flowmimic.errors import FlowMimicError
from flowmimic.evaluation.metrics import joint_errors
from flowmimic.features.normalize import Normalizer
from flowmimic.io import write_text
from flowmimic.model.genre_control import drop_labels
from flowmimic.model.losses import (LOSS_PARTS, LossWeights, kl_weight_at, training_objective, vae_losses,
                                    weighted_total)

log = logging.getLogger(__name__)
VAL_JOINT_METRICS: tuple[str, ...] = ("mpjpe_mm", "mpjpe_root_aligned_mm")


class NonFiniteLossError(FlowMimicError):
    """A loss part became NaN or infinite; training stops rather than writing a broken model."""


def seed_everything(seed: int, epoch: int, rank: int) -> None:
    """Seed torch's global RNG (dropout, reparameterisation) from (seed, epoch, rank)."""
    torch.manual_seed(int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0]))


# ----------------------------------------------------------------------------- data


@dataclass
class Loaders:
    train: DataLoader
    sampler: BalancedBatchSampler
    normalizer: Normalizer
    val: DataLoader
    n_train_sequences: int
    n_val_sequences: int


def build_loaders(params, info: DistInfo) -> Loaders:
    """Training loader (balanced, sharded over ranks) and this rank's share of the validation windows."""
    p = params.train
    norm = Normalizer.from_file(params.stats.path)
    seqs = {split: usable_sequences(params.cache.dir, params.split.dir, params.validate_.dir, split)
            for split in FIT_SPLITS}
    if not seqs["train"]:
        raise FlowMimicError(f"{params.split.dir}: no usable training sequences (check the cache and splits)")
    if info.rank == 0:
        warn_if_windows_longer_than_data(p.seq_len, [s.frames for split in FIT_SPLITS for s in seqs[split]],
                                         params.source)
    train_ds = MotionWindows(seqs["train"], p.seq_len, norm)
    sampler = BalancedBatchSampler(
        [s.frames for s in seqs["train"]], [s.domain_id for s in seqs["train"]], batch_size=p.batch_size,
        seq_len=p.seq_len, windows_per_sequence=p.windows_per_sequence, mvh_epoch_ratio=p.mvh_epoch_ratio,
        seed=p.seed, rank=info.rank, world_size=info.world_size)
    val_ds = MotionWindows(seqs["val"], p.seq_len, norm)
    val_batches = validation_batches([s.frames for s in seqs["val"]], p.seq_len, p.batch_size,
                                     info.rank, info.world_size)
    common = dict(num_workers=p.num_workers, pin_memory=info.device.type == "cuda")
    return Loaders(
        train=DataLoader(train_ds, batch_sampler=sampler, persistent_workers=p.num_workers > 0, **common),
        sampler=sampler, normalizer=norm, val=DataLoader(val_ds, batch_sampler=val_batches, **common),
        n_train_sequences=len(seqs["train"]), n_val_sequences=len(seqs["val"]))


def data_fingerprint(params) -> str:
    """Hash of the *content* of what decides the training data: the stats file, the split files, the
    bad lists, the cache index and every used feature file.

    Content, never modification times: a byte-identical cache rebuild must neither restart training
    nor change the checkpoint (which stores this value), so two from-scratch runs give identical
    files and `dvc.lock`. Hashing the features (blake2b) costs ~1-6 s per GB (idle vs busy 2-core box).
    """
    files = [Path(params.stats.path), index_path(params.cache.dir)]
    files += [split_path(params.split.dir, d, s) for d in DOMAINS for s in FIT_SPLITS]
    files += [bad_list_path(params.validate_.dir, d) for d in DOMAINS]
    h = hashlib.blake2b(digest_size=16)
    for f in files:
        h.update(f"{f.name}\0".encode())
        h.update(_file_digest(f) if f.exists() else b"<missing>")
    for split in FIT_SPLITS:
        for seq in usable_sequences(params.cache.dir, params.split.dir, params.validate_.dir, split):
            h.update(f"{seq.domain}/{seq.id}\0".encode())
            h.update(_file_digest(seq.path))
    return h.hexdigest()[:16]


def _file_digest(path: Path) -> bytes:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).digest()


def warn_if_windows_longer_than_data(seq_len: int, frames: list[int], source: str) -> None:
    """Warn (with the numbers) when every window would be padded: `seq_len` exceeds every sequence."""
    if frames and seq_len > max(frames):
        log.warning("%s: train.seq_len (%d) exceeds every cached sequence (longest %d frames, median %d, "
                    "%d sequences): every window is mostly padding; lower train.seq_len",
                    source, seq_len, max(frames), int(np.median(frames)), len(frames))


# ----------------------------------------------------------------------------- optimisation


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Multiplier of the base LR: linear warm-up to 1, then cosine decay to `min_lr_ratio` at the end."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices and embeddings only, not on biases or norms (nanoGPT's rule)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr)


def build_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                    min_lr_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, partial(
        lr_factor, warmup_steps=warmup_steps, total_steps=total_steps, min_lr_ratio=min_lr_ratio))


# ----------------------------------------------------------------------------- epochs


def _to_device(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU (float32)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _check_finite(losses: dict[str, Tensor], step: int) -> None:
    if not bool(torch.isfinite(losses["total"])):
        bad = {k: float(v.detach()) for k, v in losses.items() if not bool(torch.isfinite(v))}
        raise NonFiniteLossError(f"non-finite loss at step {step}: " + ", ".join(f"{k}={v}" for k, v in bad.items()))


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler, weights: LossWeights, *, step: int,
                device: torch.device, grad_clip: float, log_every: int,
                on_log: Callable[[int, dict[str, float]], None] | None = None,
                denormalize: Callable[[Tensor], Tensor] | None = None, cond_dropout: float = 0.0) -> int:
    """One pass over `loader`; returns the global optimiser step after it.

    `on_log(step, metrics)` (rank 0) gets the loss parts averaged over the last `log_every` steps
    and the learning rate, every `log_every` steps. `grad_clip` 0 disables clipping. `denormalize`
    (normalised -> raw features) is needed by the joint-position loss (`w_joints` > 0). `cond_dropout`:
    the share of genre labels the DECODER sees replaced by the null id (`genre_control.drop_labels`);
    the style head and the critic are still scored against the true genre.
    """
    model.train()
    window: list[Tensor] = []
    for batch in loader:
        batch = _to_device(batch, device)
        with _autocast(device):
            out = model(batch["x"], batch["mask"], batch["domain"], drop_labels(batch["genre"], cond_dropout))
        losses = vae_losses(out, batch["x"], batch["mask"], batch["genre"], weights, kl_weight_at(step, weights),
                            denormalize)
        _check_finite(losses, step)
        optimizer.zero_grad(set_to_none=True)
        training_objective(losses, weights).backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        step += 1
        if on_log is not None:
            window.append(torch.stack([losses[k].detach() for k in LOSS_PARTS]))
            if step % log_every == 0:
                means = torch.stack(window).mean(0).tolist()
                window.clear()
                on_log(step, {**dict(zip(LOSS_PARTS, means)), "lr": lr})
    return step


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, weights: LossWeights, device: torch.device,
             denormalize: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
    """Loss parts on the validation windows (posterior mean, final KL weight), averaged over all ranks.

    Parts are window-weighted means of the batch means; `style` is averaged over the windows of a
    known genre (AIST++) only, since the others have no style target (0 without any), and `total`
    is rebuilt from the averaged parts. The KL term uses the final `kl_weight`, not the warm-up value, so `total` is
    comparable across epochs and picks the best model. With `denormalize`, also the joint errors the
    evaluation reports (`mpjpe_mm`, `mpjpe_root_aligned_mm`, window-weighted here), so the curves show
    quality against training steps. Every rank must call this (it all-reduces).
    """
    model.eval()
    per_window = [k for k in LOSS_PARTS if k not in ("style", "total")]
    per_window += list(VAL_JOINT_METRICS) if denormalize is not None else []
    sums = dict.fromkeys(per_window, 0.0)
    style_sum, count, style_count = 0.0, 0, 0
    for batch in loader:
        batch = _to_device(batch, device)
        x, mask = batch["x"], batch["mask"]
        with _autocast(device):
            out = model(x, mask, batch["domain"], batch["genre"])
        losses = vae_losses(out, x, mask, batch["genre"], weights, weights.kl_weight, denormalize)
        n, n_style = x.shape[0], int((batch["genre"] != 0).sum())
        for k in per_window:
            if k in losses:
                sums[k] += losses[k].item() * n
        style_sum += losses["style"].item() * n_style          # the batch's mean over its known-genre windows
        if denormalize is not None:
            errors = joint_errors(denormalize(out.recon.float()), denormalize(x))
            for key, name in (("mpjpe", "mpjpe_mm"), ("mpjpe_root", "mpjpe_root_aligned_mm")):
                frames = torch.where(mask, errors[key], 0.0).sum(1) / mask.sum(1).clamp(min=1)   # (B,)
                sums[name] += 1000.0 * frames.sum().item()
        count += n
        style_count += n_style
    model.train()
    means = reduce_mean(sums, count, device)
    style = reduce_mean({"style": style_sum}, style_count, device)["style"]
    means["style"] = style if math.isfinite(style) else 0.0          # no AIST++ window anywhere: no style term
    means["total"] = weighted_total(means, weights, weights.kl_weight)
    return means


# ----------------------------------------------------------------------------- state


@dataclass
class TrainState:
    epoch: int = 0                                   # completed epochs
    step: int = 0                                    # optimiser steps
    best_value: float | None = None
    best_epoch: int | None = None
    best_model: dict[str, Tensor] | None = field(default=None, repr=False)   # CPU copy

    @classmethod
    def resume(cls, ckpt: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: Any) -> "TrainState":
        """Load model, optimiser and scheduler from a last-checkpoint dict; return its counters."""
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        return cls(ckpt["epoch"], ckpt["step"], ckpt["best_value"], ckpt["best_epoch"], ckpt["best_model"])

    def improve(self, value: float | None, model: nn.Module) -> bool:
        """Record the current model as best if `value` beats the best (None = no validation data)."""
        if value is not None and self.best_value is not None and not value < self.best_value:
            return False
        self.best_value, self.best_epoch = value, self.epoch
        self.best_model = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return True


def trim_live_history(live_dir: str | Path, step: int) -> None:
    """Drop dvclive metric rows logged after `step` (by a run killed after its last checkpoint)."""
    for tsv in Path(live_dir, "plots", "metrics").rglob("*.tsv"):
        with open(tsv, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
            fieldnames = list(rows[0]) if rows else None
        if not fieldnames or "step" not in fieldnames:
            continue
        kept = [r for r in rows if int(r["step"]) <= step]
        if len(kept) != len(rows):
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=fieldnames, delimiter="\t", lineterminator="\n")
            w.writeheader()
            w.writerows(kept)
            write_text(tsv, buf.getvalue())
