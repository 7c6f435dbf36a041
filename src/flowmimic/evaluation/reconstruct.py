"""Fixed evaluation windows and their reconstruction by a model trained on another window length.

Windows: every sequence is cut into consecutive, non-overlapping windows of exactly
`evaluate.window_frames` frames from its first frame on (deterministic; the tail shorter than a
window is left out, and a sequence shorter than one window is counted as too short, never padded),
so raw MPJPE -- whose root drift grows with the window -- means the same whatever `train.seq_len` is.

Model window: the VAE's positions are sinusoidal, so it accepts any length, but it has never seen
positions at or beyond its training `seq_len`, nor attended over a longer context. An evaluation
window longer than that is therefore reconstructed in consecutive chunks of at most `seq_len`
frames (each chunk encoded and decoded on its own, the last one shorter), and the chunks' features
are joined before the joints are recovered over the whole window; style logits are the mean over
the chunks. A window no longer than `seq_len` is one chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from flowmimic.features import layout
from flowmimic.features.normalize import Normalizer
from flowmimic.model.vae import VAEOutput

Key = tuple[int, int]   # (sequence index, start frame)


def evaluation_keys(frames: Sequence[int], window: int) -> tuple[list[Key], list[int]]:
    """Full non-overlapping windows of every sequence, and the indices of sequences too short for one."""
    keys = [(i, s) for i, n in enumerate(frames) for s in range(0, int(n) - window + 1, window)]
    return keys, [i for i, n in enumerate(frames) if int(n) < window]


def reconstruct(model: torch.nn.Module, x: Tensor, mask: Tensor, domain: Tensor, genre: Tensor,
                chunk: int) -> VAEOutput:
    """The model's output (posterior mean) for windows (B, T, 263), in chunks of at most `chunk` frames."""
    outs = [model(x[:, s:s + chunk], mask[:, s:s + chunk], domain, genre, sample=False)
            for s in range(0, x.shape[1], chunk)]
    if len(outs) == 1:
        return outs[0]
    style = None if outs[0].style_logits is None else torch.stack([o.style_logits for o in outs]).mean(0)
    return VAEOutput(recon=torch.cat([o.recon for o in outs], 1), mu=torch.cat([o.mu for o in outs], 1),
                     logvar=torch.cat([o.logvar for o in outs], 1), style_logits=style)


def denormalize_windows(normalizer: Normalizer, recon_norm: Tensor, target_norm: Tensor) -> tuple[Tensor, Tensor]:
    """Model output (contacts as probabilities) and target, both normalised -> feature space
    (predicted contacts thresholded at 0.5)."""
    pred = normalizer.denormalize(recon_norm)
    pred = torch.cat((pred[..., layout.CONTINUOUS], (recon_norm[..., layout.CONTACTS] > 0.5).to(pred.dtype)), dim=-1)
    return pred, normalizer.denormalize(target_norm)
