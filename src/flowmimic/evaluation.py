"""Evaluation metrics of reconstructions, accumulated over batches of windows.

Feature-space: the training loss parts (normalised space), foot-contact accuracy/precision/
recall/F1, style accuracy and confusion (AIST++). Joint-space: features are denormalised and
turned into joints with HumanML3D's recover-from-RIC (`features_to_joints`) for both the ground
truth and the reconstruction, then

    MPJPE          mean joint position error (mm), the root trajectory integrated from each
                   window's first frame, as the features define it;
    MPJPE (root)   the same after subtracting each frame's root joint (pose error alone);
    accel error    mean |second difference| error of the joints, mm/frame^2 (frames at data.fps).

Every sum is weighted by valid (unpadded) frames, so windows of any length count fairly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from flowmimic.features import layout
from flowmimic.features.humanml3d import features_to_joints
from flowmimic.features.normalize import Normalizer
from flowmimic.taxonomy import N_GENRES


def joint_errors(pred: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """Per-frame errors (metres) of denormalised feature windows (B, T, 263); mask (B, T) bool.

    Returns (B, T) tensors `mpjpe`, `mpjpe_root` and `accel` (accel valid where its three frames are,
    see `accel_mask`). Padded frames only ever follow real ones, and the root is integrated causally,
    so they cannot disturb the real frames' joints.
    """
    jp, jt = features_to_joints(pred.double()), features_to_joints(target.double())      # (B, T, 22, 3)
    mpjpe = (jp - jt).norm(dim=-1).mean(-1)
    rel = (jp - jp[..., :1, :]) - (jt - jt[..., :1, :])
    mpjpe_root = rel.norm(dim=-1).mean(-1)
    acc = torch.zeros_like(mpjpe)
    if jp.shape[1] >= 3:
        ap = jp[:, 2:] - 2 * jp[:, 1:-1] + jp[:, :-2]
        at = jt[:, 2:] - 2 * jt[:, 1:-1] + jt[:, :-2]
        acc[:, 1:-1] = (ap - at).norm(dim=-1).mean(-1)
    return {"mpjpe": mpjpe, "mpjpe_root": mpjpe_root, "accel": acc}


def accel_mask(mask: Tensor) -> Tensor:
    out = torch.zeros_like(mask)
    out[:, 1:-1] = mask[:, :-2] & mask[:, 1:-1] & mask[:, 2:]
    return out


@dataclass
class Accumulator:
    """Running sums for one domain (or all)."""

    windows: int = 0
    frames: int = 0
    loss_sums: dict[str, float] = field(default_factory=dict)
    contact: np.ndarray = field(default_factory=lambda: np.zeros(4))           # tp, fp, fn, tn
    err_sums: dict[str, float] = field(default_factory=lambda: {"mpjpe": 0.0, "mpjpe_root": 0.0, "accel": 0.0})
    accel_frames: int = 0
    genre_err: np.ndarray = field(default_factory=lambda: np.zeros((N_GENRES + 1, 2)))  # mpjpe sum, frames
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((N_GENRES, N_GENRES), dtype=np.int64))

    def add(self, losses: dict[str, Tensor], n_windows: int, contact_probs: Tensor, target: Tensor,
            mask: Tensor, errors: dict[str, Tensor], genre: Tensor, style_logits: Tensor | None) -> None:
        """One batch: losses (batch means), contact probabilities / targets (B, T, 4), errors (B, T)."""
        self.windows += n_windows
        for k, v in losses.items():
            self.loss_sums[k] = self.loss_sums.get(k, 0.0) + float(v) * n_windows
        m = mask[..., None].expand_as(contact_probs)
        pred, true = contact_probs[m] > 0.5, target[m] > 0.5
        self.contact += np.array([(pred & true).sum().item(), (pred & ~true).sum().item(),
                                  (~pred & true).sum().item(), (~pred & ~true).sum().item()])
        self.frames += int(mask.sum())
        am = accel_mask(mask)
        self.accel_frames += int(am.sum())
        for k in ("mpjpe", "mpjpe_root"):
            self.err_sums[k] += float(errors[k][mask].sum())
        self.err_sums["accel"] += float(errors["accel"][am].sum())
        per_window = (errors["mpjpe"] * mask).sum(1)                                  # (B,)
        for g, e, n in zip(genre.tolist(), per_window.tolist(), mask.sum(1).tolist()):
            self.genre_err[g] += (e, n)
        if style_logits is not None:
            known = genre > 0
            for t, p in zip((genre[known] - 1).tolist(), style_logits[known].argmax(-1).tolist()):
                self.confusion[t, p] += 1

    def merge(self, other: "Accumulator") -> None:
        self.windows += other.windows
        self.frames += other.frames
        self.accel_frames += other.accel_frames
        for k, v in other.loss_sums.items():
            self.loss_sums[k] = self.loss_sums.get(k, 0.0) + v
        for k, v in other.err_sums.items():
            self.err_sums[k] += v
        self.contact += other.contact
        self.genre_err += other.genre_err
        self.confusion += other.confusion

    def summary(self) -> dict:
        """The metrics of this accumulator as a JSON-ready dict."""
        if self.windows == 0:
            return {"windows": 0}
        tp, fp, fn, tn = self.contact
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        out = {
            "windows": self.windows, "frames": self.frames,
            **{k: round(v / self.windows, 6) for k, v in self.loss_sums.items()},
            "contact_accuracy": round((tp + tn) / max(self.contact.sum(), 1), 4),
            "contact_f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
            "mpjpe_mm": round(1000 * self.err_sums["mpjpe"] / self.frames, 2),
            "mpjpe_root_aligned_mm": round(1000 * self.err_sums["mpjpe_root"] / self.frames, 2),
            "accel_error_mm_per_frame2": round(1000 * self.err_sums["accel"] / max(self.accel_frames, 1), 3),
        }
        n_style = int(self.confusion.sum())
        if n_style:
            out["style_accuracy"] = round(float(np.trace(self.confusion)) / n_style, 4)
            out["style_windows"] = n_style
        return out

    def per_genre_mpjpe(self) -> dict[int, float]:
        """Genre id -> MPJPE in mm, for genres with frames."""
        return {g: 1000 * s / n for g, (s, n) in enumerate(self.genre_err) if n > 0}


def denormalize_windows(normalizer: Normalizer, recon_norm: Tensor, target_norm: Tensor) -> tuple[Tensor, Tensor]:
    """Model output (contacts as probabilities) and target, both normalised -> feature space."""
    pred = normalizer.denormalize(recon_norm)
    pred = torch.cat((pred[..., layout.CONTINUOUS], (recon_norm[..., layout.CONTACTS] > 0.5).to(pred.dtype)), dim=-1)
    return pred, normalizer.denormalize(target_norm)
