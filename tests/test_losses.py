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


# The smoothed groups, written out rather than read from `layout.SMOOTHED`, so that dropping one
# there fails here: root [0:4], 6-D rotations [67:193], local velocities [193:259] = 196 dims.
SMOOTHED_DIMS = [*range(0, 4), *range(67, 193), *range(193, 259)]


def _smooth(out, target, mask, recon=None):
    genre = torch.zeros(B, dtype=torch.long)
    o = VAEOutput(out.recon if recon is None else recon, out.mu, out.logvar, None)
    return vae_losses(o, target, mask, genre, W, 0.0)["smooth"]


def test_smoothness_matches_its_definition_on_the_196_dims():
    out, target, mask = make()
    assert len(SMOOTHED_DIMS) == 196
    d_rec, d_tgt = out.recon[..., SMOOTHED_DIMS].diff(dim=1), target[..., SMOOTHED_DIMS].diff(dim=1)
    per_pair = F.smooth_l1_loss(d_rec, d_tgt, reduction="none").mean(-1)           # (B, T-1)
    pairs = mask[:, 1:] & mask[:, :-1]
    assert torch.allclose(_smooth(out, target, mask), per_pair[pairs].mean())


@pytest.mark.parametrize("group", [slice(0, 4), slice(67, 193), slice(193, 259)], ids=["root", "rot_6d", "local_vel"])
def test_smoothness_sees_every_smoothed_group(group):
    """A time-varying change confined to one group changes the loss (fails if that group is dropped)."""
    out, target, mask = make()
    recon = out.recon.clone()
    width = group.stop - group.start
    recon[..., group] += torch.randn(B, T, width, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(_smooth(out, target, mask, recon), _smooth(out, target, mask))


@pytest.mark.parametrize("group", [slice(4, 67), slice(259, 263)], ids=["ric", "contacts"])
def test_smoothness_ignores_other_dims(group):
    out, target, mask = make()
    recon = out.recon.clone()
    recon[..., group] += torch.randn(B, T, group.stop - group.start, generator=torch.Generator().manual_seed(1))
    assert torch.equal(_smooth(out, target, mask, recon), _smooth(out, target, mask))


def test_smoothness_ignores_constant_offsets():
    """Frame-to-frame differences are unchanged by an offset that is constant over time."""
    out, target, mask = make()
    recon = out.recon.clone()
    recon[..., SMOOTHED_DIMS] += 3.0
    assert torch.allclose(_smooth(out, target, mask, recon), _smooth(out, target, mask))


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
