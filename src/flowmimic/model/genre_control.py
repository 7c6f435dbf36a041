"""Making the decoder's genre label matter, top-down in one file.

The VAE's latent is per frame, so it can carry the whole motion -- genre included -- and a decoder
that reads the genre from z has no reason to listen to its label: swapping the label (a transfer)
then changes little. Two independent mechanisms, each off at 0 so the seed's configuration stays
reproducible (no module built, no random number drawn):

  adversarial genre critic (`train.w_genre_adv`)
      A small temporal network reads the posterior means mu (B, T, Z) through a gradient reversal
      layer and predicts the genre. The critic learns to find the genre in z; the reversed gradient
      teaches the encoder to hide it, so the decoder must take the genre from its label. Domain-
      adversarial training with a gradient reversal layer: Ganin & Lempitsky, "Unsupervised Domain
      Adaptation by Backpropagation", ICML 2015. The critic is temporal (1-D convolutions) because a
      genre shows in rhythm and dynamics, which a per-frame or mean-pooled critic cannot see.
  condition dropout + classifier-free guidance (`train.cond_dropout`, `generate.decoder_guidance`)
      At training, each AIST++ window's genre label is replaced, with probability p, by the null id
      `UNKNOWN_GENRE` (0, the id unlabelled MVHumanNet windows already carry), so the decoder learns
      both p(x | z, genre) and p(x | z). At decoding, guidance s extrapolates from the unconditional
      output towards the conditional one: out = out(null) + s * (out(genre) - out(null)); s = 1 is
      plain decoding. Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022 (applied here to
      the decoder's output instead of a diffusion score).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowmimic.taxonomy import UNKNOWN_GENRE

NULL_GENRE = UNKNOWN_GENRE        # the "no label" id of condition dropout and guidance


# ----------------------------------------------------------------------------- adversarial critic


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient multiplied by -scale backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: Tensor, scale: float = 1.0) -> Tensor:
    """x unchanged; gradients flowing back through it are multiplied by -scale."""
    return _ReverseGradient.apply(x, scale)


class GenreCritic(nn.Module):
    """Latents (B, T, Z) + mask (B, T) -> genre logits (B, n_genres), read through gradient reversal.

    Two 1-D convolutions over frames (kernel 5: a quarter second each at 20 fps, so rhythm within a
    beat is visible), GELU, a masked mean over real frames and a linear head.
    """

    KERNEL = 5

    def __init__(self, d_z: int, hidden: int, n_genres: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(d_z, hidden, self.KERNEL, padding=self.KERNEL // 2)
        self.conv2 = nn.Conv1d(hidden, hidden, self.KERNEL, padding=self.KERNEL // 2)
        self.head = nn.Linear(hidden, n_genres)

    def forward(self, z: Tensor, mask: Tensor) -> Tensor:
        m = mask[:, None, :].to(z.dtype)                                                # (B, 1, T)
        h = z.transpose(1, 2) * m                                                       # (B, Z, T), padding 0
        h = F.gelu(self.conv1(h)) * m
        h = F.gelu(self.conv2(h)) * m                                                   # (B, H, T)
        pooled = h.sum(-1) / m.sum(-1).clamp(min=1.0)                                   # (B, H)
        return self.head(pooled)                                                        # (B, n_genres)


def adversarial_genre_loss(critic_logits: Tensor, genre: Tensor) -> Tensor:
    """Critic cross-entropy (B, G) logits vs (B,) genre ids, over windows with a known genre.

    The logits come from `GenreCritic` reading mu through `reverse_gradient` (`MotionVAE.forward`),
    so minimising this trains the critic to find the genre in mu and the encoder to hide it. A batch
    without a known genre gives an exact 0 that keeps the critic in the graph (DDP).
    """
    ce = F.cross_entropy(critic_logits.float(), (genre - 1).clamp(min=0), reduction="none")   # (B,)
    known = (genre != NULL_GENRE).to(ce.dtype)
    return (ce * known).sum() / known.sum().clamp(min=1.0)


# ----------------------------------------------------------------------------- condition dropout


def drop_labels(genre: Tensor, rate: float, generator: torch.Generator | None = None) -> Tensor:
    """(B,) genre ids with each known label replaced by `NULL_GENRE` with probability `rate`.

    `rate` 0 returns `genre` itself and draws no random number (the seed's RNG stream is untouched).
    """
    if rate <= 0:
        return genre
    drop = torch.rand(genre.shape, generator=generator, device=genre.device) < rate
    return torch.where(drop, torch.full_like(genre, NULL_GENRE), genre)


# ----------------------------------------------------------------------------- guidance


def guided_decode(decode: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor], z: Tensor, mask: Tensor,
                  domain: Tensor, genre: Tensor, scale: float) -> Tensor:
    """Classifier-free guidance of a decoder over its genre label.

    `decode(z, mask, domain, genre)` is the decoder ((B, T, Z), (B, T), (B,), (B,) -> (B, T, C)).
    Returns decode(null) + scale * (decode(genre) - decode(null)), both halves in one batched call;
    `scale` 1 is plain decoding (a single call, bit-identical to `decode(z, mask, domain, genre)`).
    """
    if scale == 1.0:
        return decode(z, mask, domain, genre)
    both = decode(torch.cat([z, z]), torch.cat([mask, mask]), torch.cat([domain, domain]),
                  torch.cat([genre, torch.full_like(genre, NULL_GENRE)]))
    cond, uncond = both.chunk(2)
    return uncond + scale * (cond - uncond)
