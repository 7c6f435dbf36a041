"""The VAE's training objective over the 263-D layout (the seed's grouped losses).

All terms are masked means over real frames (mask (B, T) bool, True = real), computed in float32:

  recon    SmoothL1 on the continuous dims [0:259], normalised space
  contact  BCE-with-logits on the foot contacts [259:263] (the decoder emits logits there)
  kl       KL(q(z|x) || N(0, I)) per frame, summed over the latent dims, mean over frames;
           weighted by `kl_weight_at(step)`, a linear warm-up to `kl_weight`
  smooth   SmoothL1 between the reconstruction's and the target's frame-to-frame differences on
           `layout.SMOOTHED` (root, 6-D rotations, local velocities), over pairs of real frames
  style    cross-entropy of the style head on samples with a known genre (genre id != 0)
  joints   mean per-joint position error (metres, L2) between the joints recovered from the
           reconstruction and from the target (`features_to_joints`, root integrated from the window's
           first frame): the evaluation's MPJPE as a loss, so root drift and small rotation errors that
           the per-dimension terms weigh lightly are paid for where they show. Needs the raw-feature
           scale, hence the `denormalize` argument; computed only when `w_joints` > 0 (else 0).
  total    w_recon * recon + w_contact * contact + kl_weight * kl + w_smooth * smooth + w_style * style
           + w_joints * joints
  genre_adv  cross-entropy of the adversarial genre critic on mu (`model.genre_control`; 0 without a
           critic). NOT in `total`: `total` is the VAE's objective, which validation compares across
           epochs to pick the best model, and a model whose encoder hides the genre well has a HIGH
           critic loss. What training minimises is `training_objective` = total + w_genre_adv * genre_adv
           (the critic descends on it, the encoder ascends through the gradient reversal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from flowmimic.features import layout
from flowmimic.features.humanml3d import features_to_joints
from flowmimic.model.genre_control import adversarial_genre_loss
from flowmimic.model.vae import VAEOutput

LOSS_PARTS: tuple[str, ...] = ("recon", "contact", "kl", "kl_weight", "smooth", "style", "joints", "genre_adv",
                               "total")


@dataclass(frozen=True)
class LossWeights:
    w_recon: float
    w_contact: float
    w_smooth: float
    w_style: float
    w_joints: float           # 0 keeps the seed's loss (no joint-position term)
    kl_weight: float          # final KL weight, reached after kl_warmup_steps
    kl_warmup_steps: int
    w_genre_adv: float = 0.0  # adversarial genre critic on z; 0 (off) keeps the seed's loss


    @classmethod
    def from_train_params(cls, p) -> "LossWeights":
        """From the `train` section of params.yaml (`flowmimic.params.TrainParams`)."""
        return cls(w_recon=p.w_recon, w_contact=p.w_contact, w_smooth=p.w_smooth, w_style=p.w_style,
                   w_joints=p.w_joints, kl_weight=p.kl_weight, kl_warmup_steps=p.kl_warmup_steps,
                   w_genre_adv=getattr(p, "w_genre_adv", 0.0))   # train params of older checkpoints lack it


def kl_weight_at(step: int, weights: LossWeights) -> float:
    """KL weight at optimiser step `step`: linear from 0 to `kl_weight` over `kl_warmup_steps`."""
    if weights.kl_warmup_steps == 0:
        return weights.kl_weight
    return weights.kl_weight * min(1.0, step / weights.kl_warmup_steps)


def weighted_total(parts: Mapping[str, Any], weights: LossWeights, kl_weight: float) -> Any:
    """The training objective from its parts (tensors, floats or arrays alike): see the module docstring."""
    return (weights.w_recon * parts["recon"] + weights.w_contact * parts["contact"] + kl_weight * parts["kl"]
            + weights.w_smooth * parts["smooth"] + weights.w_style * parts["style"] + weights.w_joints * parts["joints"])


def training_objective(losses: Mapping[str, Tensor], weights: LossWeights) -> Tensor:
    """What the optimiser minimises: `total` plus the adversarial critic's term (see the module docstring)."""
    if weights.w_genre_adv > 0:
        return losses["total"] + weights.w_genre_adv * losses["genre_adv"]
    return losses["total"]


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` over the entries where `mask` (same shape, bool) is True; 0 if there are none."""
    return torch.where(mask, values, 0.0).sum() / mask.sum().clamp(min=1).to(values.dtype)


def _smoothed(x: Tensor) -> Tensor:
    return torch.cat([x[..., s] for s in layout.SMOOTHED], dim=-1)                     # (B, T, 196): 4 + 126 + 66


def joint_position_loss(recon: Tensor, target: Tensor, mask: Tensor,
                        denormalize: Callable[[Tensor], Tensor]) -> Tensor:
    """Masked mean per-joint L2 distance (m) between the joints of two normalised feature windows (B, T, 263)."""
    pred = features_to_joints(denormalize(recon))                                     # (B, T, 22, 3)
    true = features_to_joints(denormalize(target))
    return masked_mean((pred - true).norm(dim=-1).mean(-1), mask)


def vae_losses(out: VAEOutput, target: Tensor, mask: Tensor, genre: Tensor,
               weights: LossWeights, kl_weight: float,
               denormalize: Callable[[Tensor], Tensor] | None = None) -> dict[str, Tensor]:
    """All loss parts and their weighted total.

    Args:
        out: the model's output (recon (B, T, 263), mu/logvar (B, T, Z), style logits (B, G) or None).
        target: (B, T, 263) normalised features (contacts 0/1).
        mask: (B, T) bool, True on real frames.
        genre: (B,) long, 0 = unknown; style class = genre - 1.
        weights: the loss weights; `kl_weight` the KL weight for this step (see `kl_weight_at`).
        denormalize: normalised -> raw features (`Normalizer.denormalize`); required when `w_joints` > 0.
    Returns:
        dict of scalar float32 tensors named as `LOSS_PARTS`.
    """
    recon, target = out.recon.float(), target.float()
    rec = F.smooth_l1_loss(recon[..., layout.CONTINUOUS], target[..., layout.CONTINUOUS], reduction="none")
    contact = F.binary_cross_entropy_with_logits(recon[..., layout.CONTACTS], target[..., layout.CONTACTS],
                                                 reduction="none")
    mu, logvar = out.mu.float(), out.logvar.float()
    kl = -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(-1)                      # (B, T)

    d_rec = _smoothed(recon).diff(dim=1)                                               # (B, T-1, 196)
    d_tgt = _smoothed(target).diff(dim=1)
    pair_mask = mask[:, 1:] & mask[:, :-1]                                             # (B, T-1)
    smooth = F.smooth_l1_loss(d_rec, d_tgt, reduction="none").mean(-1)                  # (B, T-1)

    losses = {
        "recon": masked_mean(rec.mean(-1), mask),
        "contact": masked_mean(contact.mean(-1), mask),
        "kl": masked_mean(kl, mask),
        "kl_weight": torch.tensor(float(kl_weight), device=recon.device),
        "smooth": masked_mean(smooth, pair_mask),
    }
    if out.style_logits is None:
        losses["style"] = torch.zeros((), device=recon.device)
    else:
        # Masked rather than indexed: no host sync, and a batch without AIST++ samples gives an exact 0
        # that still keeps the head in the graph (DDP expects every parameter to get a gradient).
        ce = F.cross_entropy(out.style_logits.float(), (genre - 1).clamp(min=0), reduction="none")  # (B,)
        losses["style"] = masked_mean(ce, genre != 0)
    if weights.w_joints > 0:
        if denormalize is None:
            raise ValueError("w_joints > 0 needs `denormalize` (the features' normaliser)")
        losses["joints"] = joint_position_loss(recon, target, mask, denormalize)
    else:
        losses["joints"] = torch.zeros((), device=recon.device)
    losses["genre_adv"] = (torch.zeros((), device=recon.device) if out.critic_logits is None
                           else adversarial_genre_loss(out.critic_logits, genre))
    losses["total"] = weighted_total(losses, weights, kl_weight)
    return losses
