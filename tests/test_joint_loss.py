"""The joint-position loss: zero on identical windows, closed-form values on hand-built offsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flowmimic.body.skeleton import N_JOINTS
from flowmimic.features import layout
from flowmimic.features.normalize import Normalizer
from flowmimic.model.losses import LossWeights, joint_position_loss, vae_losses
from flowmimic.model.vae import VAEOutput

IDENTITY = Normalizer(np.zeros(layout.DIM), np.ones(layout.DIM)).denormalize
B, T = 3, 7


def still_windows() -> torch.Tensor:
    """Features of a body that does not turn (yaw velocity 0), random pose, random root motion."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, layout.DIM, generator=g) * 0.1
    x[..., layout.ROOT_YAW_VEL] = 0.0
    return x


def test_identical_windows_give_zero():
    x = still_windows()
    assert joint_position_loss(x, x.clone(), torch.ones(B, T, dtype=torch.bool), IDENTITY).item() == 0.0


def test_root_height_offset_moves_only_the_root_joint():
    # HumanML3D keeps joint heights absolute, so the root-height dim moves the root joint alone: h / 22.
    x, h = still_windows(), 0.05
    y = x.clone()
    y[..., layout.ROOT_Y] += h
    loss = joint_position_loss(y, x, torch.ones(B, T, dtype=torch.bool), IDENTITY)
    assert loss.item() == pytest.approx(h / N_JOINTS, rel=1e-5)


def test_root_velocity_error_is_integrated_over_the_window():
    # An x-velocity error dv on frame 0 displaces every joint of frames 1..T-1 by dv (no yaw):
    # mean over frames = dv * (T - 1) / T.
    x, dv = still_windows(), 0.02
    y = x.clone()
    y[:, 0, layout.ROOT_XZ_VEL.start] += dv
    loss = joint_position_loss(y, x, torch.ones(B, T, dtype=torch.bool), IDENTITY)
    assert loss.item() == pytest.approx(dv * (T - 1) / T, rel=1e-5)


def test_padded_frames_are_ignored_and_gradients_reach_the_root():
    x = still_windows()
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 5:] = False
    y = x.clone()
    y[1, 5:] += 3.0                                   # garbage on padded frames only
    assert joint_position_loss(y, x, mask, IDENTITY).item() == 0.0
    z = x.clone().requires_grad_(True)
    joint_position_loss(z + 0.01, x, mask, IDENTITY).backward()
    assert z.grad[..., layout.ROOT_XZ_VEL].abs().sum() > 0


def test_weight_enters_the_total_and_needs_the_normaliser():
    x = still_windows()
    mask, genre = torch.ones(B, T, dtype=torch.bool), torch.zeros(B, dtype=torch.long)
    y = x.clone()
    y[..., layout.ROOT_Y] += 0.1
    out = VAEOutput(recon=y, mu=torch.zeros(B, T, 4), logvar=torch.zeros(B, T, 4), style_logits=None)
    base = dict(w_recon=0.0, w_contact=0.0, w_smooth=0.0, w_style=0.0, kl_weight=0.0, kl_warmup_steps=0)
    losses = vae_losses(out, x, mask, genre, LossWeights(**base, w_joints=2.0), 0.0, IDENTITY)
    assert losses["total"].item() == pytest.approx(2.0 * 0.1 / N_JOINTS, rel=1e-5)
    assert vae_losses(out, x, mask, genre, LossWeights(**base, w_joints=0.0), 0.0)["joints"].item() == 0.0
    with pytest.raises(ValueError, match="denormalize"):
        vae_losses(out, x, mask, genre, LossWeights(**base, w_joints=1.0), 0.0)
