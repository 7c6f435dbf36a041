"""The grouped 263-D losses: masking, KL warm-up, smoothness dims, style CE on known genres only."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from flowmimic.features import layout
from flowmimic.model.losses import LOSS_PARTS, LossWeights, kl_weight_at, vae_losses
from flowmimic.model.vae import VAEOutput

W = LossWeights(w_recon=1.0, w_contact=0.5, w_smooth=0.25, w_style=0.1, w_joints=0.0, kl_weight=0.01, kl_warmup_steps=100)
B, T, Z, G = 4, 6, 5, 10


def make(seed=0, style=True):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(B, T, layout.DIM, generator=g)
    target[..., layout.CONTACTS] = (target[..., layout.CONTACTS] > 0).float()
    out = VAEOutput(recon=torch.randn(B, T, layout.DIM, generator=g), mu=torch.randn(B, T, Z, generator=g),
                    logvar=torch.randn(B, T, Z, generator=g) * 0.3,
                    style_logits=torch.randn(B, G, generator=g) if style else None)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[2, 4:] = False
    return out, target, mask


def test_kl_warmup_schedule():
    assert kl_weight_at(0, W) == 0.0
    assert kl_weight_at(50, W) == pytest.approx(0.005)
    assert kl_weight_at(100, W) == pytest.approx(0.01)
    assert kl_weight_at(10_000, W) == pytest.approx(0.01)
    no_warmup = LossWeights(**{**W.__dict__, "kl_warmup_steps": 0})
    assert kl_weight_at(0, no_warmup) == 0.01


def test_parts_total_and_kl_value():
    out, target, mask = make()
    genre = torch.tensor([1, 0, 5, 0])
    losses = vae_losses(out, target, mask, genre, W, kl_weight=0.004)
    assert set(losses) == set(LOSS_PARTS)
    assert all(v.dtype == torch.float32 and v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    expected_total = (W.w_recon * losses["recon"] + W.w_contact * losses["contact"] + 0.004 * losses["kl"]
                      + W.w_smooth * losses["smooth"] + W.w_style * losses["style"])
    assert torch.allclose(losses["total"], expected_total)
    kl_frames = 0.5 * (out.mu ** 2 + out.logvar.exp() - 1 - out.logvar).sum(-1)     # textbook KL per frame
    assert torch.allclose(losses["kl"], kl_frames[mask].mean())
    assert torch.allclose(losses["recon"], F.smooth_l1_loss(out.recon[..., :259][mask], target[..., :259][mask]))
    assert torch.allclose(losses["contact"], F.binary_cross_entropy_with_logits(
        out.recon[..., 259:][mask], target[..., 259:][mask]))
    assert torch.allclose(losses["style"], F.cross_entropy(out.style_logits[[0, 2]], torch.tensor([0, 4])))


def test_padded_frames_change_nothing():
    out, target, mask = make()
    genre = torch.tensor([1, 0, 5, 0])
    a = vae_losses(out, target, mask, genre, W, kl_weight=0.01)
    target2, recon2, mu2 = target.clone(), out.recon.clone(), out.mu.clone()
    target2[2, 4:] = 1e6
    recon2[2, 4:] = float("nan")
    mu2[2, 5] = float("inf")
    b = vae_losses(VAEOutput(recon2, mu2, out.logvar, out.style_logits), target2, mask, genre, W, kl_weight=0.01)
    for k in LOSS_PARTS:
        assert torch.equal(a[k], b[k]), k


def test_perfect_reconstruction_has_zero_recon_and_smooth():
    out, target, mask = make()
    recon = target.clone()
    recon[..., layout.CONTACTS] = (target[..., layout.CONTACTS] * 2 - 1) * 50   # confident logits
    losses = vae_losses(VAEOutput(recon, out.mu, out.logvar, out.style_logits), target, mask,
                        torch.zeros(B, dtype=torch.long), W, 0.0)
    assert losses["recon"] == 0 and losses["smooth"] == 0 and losses["contact"] < 1e-6


def test_smoothness_only_on_smoothed_dims():
    out, target, mask = make()
    genre = torch.zeros(B, dtype=torch.long)
    base = vae_losses(out, target, mask, genre, W, 0.0)
    ric = out.recon.clone()
    ric[..., layout.RIC] += torch.randn(B, T, 63)                  # ric is not a smoothed group
    moved = vae_losses(VAEOutput(ric, out.mu, out.logvar, None), target, mask, genre, W, 0.0)
    assert torch.equal(moved["smooth"], base["smooth"]) and not torch.equal(moved["recon"], base["recon"])
    rot = out.recon.clone()
    rot[..., layout.ROT_6D] += torch.randn(B, T, 126)
    assert not torch.equal(vae_losses(VAEOutput(rot, out.mu, out.logvar, None), target, mask, genre, W,
                                      0.0)["smooth"], base["smooth"])
    # a constant offset over time leaves frame-to-frame differences unchanged
    shifted = out.recon.clone()
    shifted[..., layout.LOCAL_VEL] += 3.0
    s = vae_losses(VAEOutput(shifted, out.mu, out.logvar, None), target, mask, genre, W, 0.0)["smooth"]
    assert torch.allclose(s, base["smooth"])


def test_style_loss_zero_without_known_genres_and_keeps_graph():
    out, target, mask = make()
    logits = out.style_logits.clone().requires_grad_(True)
    losses = vae_losses(VAEOutput(out.recon, out.mu, out.logvar, logits), target, mask,
                        torch.zeros(B, dtype=torch.long), W, 0.01)
    assert losses["style"] == 0 and torch.isfinite(losses["total"])
    losses["total"].backward()
    assert logits.grad is not None and torch.equal(logits.grad, torch.zeros_like(logits))
    no_head = vae_losses(make(style=False)[0], target, mask, torch.tensor([1, 2, 3, 4]), W, 0.01)
    assert no_head["style"] == 0
