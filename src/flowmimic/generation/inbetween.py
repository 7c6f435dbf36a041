"""In-betweening and continuation with the flow prior: known latent frames, a generated gap, placement.

    inbetween_latents   [A's last c latents | gap | B's first c latents] -> the gap filled by the prior
    continue_latents    [prefix's last c latents | new frames], window by window for any length
    place_between       joints of a decoded in-between put in A's frame, the trajectory bent to meet B
    inbetween / continue_motion   the library functions behind `flowmimic inbetween` / `continue`

Known frames are imposed by replacement along the flow's path and, for a prior trained with a
context input, given to the network as well (`generation.flow`, which says why).
Context: the prior was trained on windows of `prior.window` latent frames, so the context kept on
each side is at most (window - gap) / 2 frames (`context_frames`); a gap longer than window - 2
frames is refused. A continuation keeps at most half a window of the prefix as context and is
generated window by window, each new window keeping the last `context` frames of the previous one
as known frames.

Placement and the end of the gap: the decoded window is a feature sequence, so its joints come out
in a canonical frame; they are put where A's context is by the turn about the vertical and the
shift that best fit the decoded context frames to A's (`yaw_fit`, least squares over all of them)
on A's floor. Nothing in the latents knows where B stands in the world, so the gap's integrated
root trajectory ends near, not at, B's first frame. `place_between` closes that residual (pelvis
x/z and heading) by turning and shifting the gap's frames about A's last pelvis with a weight that
rises smoothly from 0 at A's last frame to 1 at B's first (smootherstep, 6u^5 - 15u^4 + 10u^3: no
velocity or acceleration step at either join), and B's context frames by the full correction; the
residual before the correction is reported by the generate stage
(`root_end_error_before_correction_m`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from flowmimic.body.skeleton import L_HIP, L_SHOULDER, PELVIS, R_HIP, R_SHOULDER
from flowmimic.errors import ConfigError
from flowmimic.features.humanml3d import features_to_joints
from flowmimic.features.layout import CONTACTS
from flowmimic.generation.checkpoint import GenerationModel
from flowmimic.generation.core import GeneratedMotion, decode_latents, encode_input
from flowmimic.generation.flow import LoadedPrior, reinpaint_seams, sample_latents
from flowmimic.generation.footlock import lock_feet
from flowmimic.generation.inputs import MotionInput
from flowmimic.generation.placement import place
from flowmimic.taxonomy import DOMAINS


def context_frames(window: int, gap: int, available: tuple[int, int] = (10**9, 10**9)) -> int:
    """Known frames per side for a gap of `gap` latent frames in the prior's `window`; ConfigError if none fit."""
    if gap < 1 or gap > window - 2:
        raise ConfigError(f"a gap of {gap} frames does not fit the flow prior's window of {window} frames with "
                          "known frames on both sides (shorten --seconds)")
    return max(1, min((window - gap) // 2, *available))


@dataclass(frozen=True)
class Seam:
    """The second pass over the joins (`generation.flow.reinpaint_seams`): its noise level and how many
    known frames next to each join it may change (`generate.seam_strength`, `generate.seam_frames`)."""

    strength: float
    frames: int


def inbetween_latents(prior: LoadedPrior, z_a: Tensor, z_b: Tensor, gap: int, domain: int, genre: int | list[int], *,
                      steps: int, solver: str, guidance: float, generator: torch.Generator | None = None,
                      seam: Seam | None = None) -> Tensor:
    """A's last and B's first latents (B, c, Z) each -> (B, c + gap + c, Z) with the gap generated, then
    the joins re-generated at low noise (`seam`: `generation.flow.reinpaint_seams`; None: not)."""
    n, c, z_dim = z_a.shape
    if z_b.shape != z_a.shape:
        raise ValueError(f"A and B contexts must have the same shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    frames = 2 * c + gap
    known = torch.cat([z_a, torch.zeros(n, gap, z_dim), z_b], 1)
    mask = torch.zeros(n, frames, dtype=torch.bool)
    mask[:, :c] = True
    mask[:, c + gap:] = True
    z = sample_latents(prior, n, frames, domain, genre, steps=steps, solver=solver, guidance=guidance,
                       generator=generator, known=known, known_mask=mask)
    return _seams(prior, z, mask, domain, genre, seam, steps, solver, guidance, generator)


def _seams(prior: LoadedPrior, z: Tensor, mask: Tensor, domain: int, genre: int | list[int], seam: Seam | None,
           steps: int, solver: str, guidance: float, generator: torch.Generator | None) -> Tensor:
    if seam is None:
        return z
    return reinpaint_seams(prior, z, mask, domain, genre, strength=seam.strength, release=seam.frames, steps=steps,
                           solver=solver, guidance=guidance, generator=generator)


def continue_latents(prior: LoadedPrior, z_prefix: Tensor, new: int, domain: int, genre: int, *, steps: int,
                     solver: str, guidance: float, generator: torch.Generator | None = None,
                     seam: Seam | None = None) -> Tensor:
    """The prefix's last latents (1, c, Z) -> (1, c + new, Z): `new` frames generated window by window
    (each window's join with its known frames re-generated as `inbetween_latents` does)."""
    window, c = prior.window, z_prefix.shape[1]
    if c >= window:
        raise ConfigError(f"the continuation keeps {c} known frames, the prior's window is {window}")
    z = z_prefix
    while z.shape[1] < z_prefix.shape[1] + new:
        todo = min(window - c, z_prefix.shape[1] + new - z.shape[1])
        ctx = z[:, -c:]
        known = torch.cat([ctx, torch.zeros(1, todo, ctx.shape[-1])], 1)
        mask = torch.zeros(1, c + todo, dtype=torch.bool)
        mask[:, :c] = True
        out = sample_latents(prior, 1, c + todo, domain, genre, steps=steps, solver=solver, guidance=guidance,
                             generator=generator, known=known, known_mask=mask)
        out = _seams(prior, out, mask, domain, genre, seam, steps, solver, guidance, generator)
        z = torch.cat([z[:, :-c], out], 1)
    return z


# ----------------------------------------------------------------------------- placement


def heading(joints: Tensor) -> Tensor:
    """(..., 22, 3) -> (...,) yaw in radians, atan2(f_x, f_z) of the facing direction (HumanML3D's:
    up x (hips + shoulders across))."""
    across = (joints[..., R_HIP, :] - joints[..., L_HIP, :]) + (joints[..., R_SHOULDER, :] - joints[..., L_SHOULDER, :])
    return torch.atan2(across[..., 2], -across[..., 0])      # forward = (0, 1, 0) x across = (a_z, 0, -a_x)


def _turn(joints: Tensor, angle: Tensor, pivot: Tensor) -> Tensor:
    """Rotate (F, 22, 3) about the vertical through `pivot` (3,) by `angle` (F,) radians (yaw grows by angle)."""
    c, s = angle.cos()[:, None], angle.sin()[:, None]
    x, z = joints[..., 0] - pivot[0], joints[..., 2] - pivot[2]
    return torch.stack([pivot[0] + x * c + z * s, joints[..., 1], pivot[2] - x * s + z * c], -1)


def wrap(angle: Tensor) -> Tensor:
    """Angles to (-pi, pi]."""
    return torch.atan2(angle.sin(), angle.cos())


def yaw_fit(moving: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The turn about the vertical and horizontal shift that best map `moving` onto `target` (..., 3).

    Least squares over every point (2-D Procrustes in x/z: the angle maximising sum e . R(a) d for the
    centred points d, e). Returns (angle, centre, shift): `_turn(x, angle, centre) + shift` applies it.
    """
    m, q = moving.reshape(-1, 3).double(), target.reshape(-1, 3).double()
    cm, cq = m.mean(0), q.mean(0)
    d, e = m - cm, q - cq
    angle = torch.atan2((e[:, 0] * d[:, 2] - e[:, 2] * d[:, 0]).sum(), (e[:, 0] * d[:, 0] + e[:, 2] * d[:, 2]).sum())
    shift = (cq - cm) * cq.new_tensor([1.0, 0.0, 1.0])
    return angle.to(moving.dtype), cm.to(moving.dtype), shift.to(moving.dtype)


@dataclass(frozen=True)
class Placed:
    joints: Tensor                   # (2c + gap, 22, 3) in A's frame, trajectory meeting B
    end_error_before_m: float        # pelvis x/z distance at B's first frame before the correction
    heading_error_before_deg: float


def place_on_context(canonical: Tensor, reference: Tensor, c: int) -> Tensor:
    """Decoded joints (N, 22, 3), canonical frame -> where the reference's first `c` frames (its joints,
    >= 1 frames) are: `place` for the floor, then the turn and shift that best fit the decoded first c
    frames to the reference's (`yaw_fit`; one frame's heading would carry that frame's pose error into
    every frame)."""
    out = place(canonical, reference)
    n = min(c, reference.shape[0])
    angle, centre, shift = yaw_fit(out[:n], reference[:n].to(out.dtype))
    return _turn(out, angle.expand(out.shape[0]), centre) + shift


def place_between(canonical: Tensor, a_joints: Tensor, b_joints: Tensor, c: int, gap: int) -> Placed:
    """Joints decoded from [A ctx | gap | B ctx] (canonical) -> A's frame, the gap bent to meet B.

    `a_joints` (>= 1 frames): A's joints from the window's first frame on; `b_joints` (>= 1 frames):
    B's joints from B's first known frame on. The window is put where A's context is by the turn and
    shift that best fit its first c frames to A's (`yaw_fit`, after `place` for A's floor); the bend's
    turn is the one that best fits B's context frames to B's, its shift puts B's first pelvis on B's.
    """
    out = place(canonical, a_joints)
    n_a = min(c, a_joints.shape[0])
    angle, centre, shift = yaw_fit(out[:n_a], a_joints[:n_a].to(out.dtype))
    out = _turn(out, angle.expand(out.shape[0]), centre) + shift
    b0 = c + gap
    target_pos, target_yaw = b_joints[0, PELVIS].to(out.dtype), heading(b_joints[0].to(out.dtype))
    pivot = out[c - 1, PELVIS]
    d_yaw = wrap(target_yaw - heading(out[b0]))
    before_m = float((out[b0, PELVIS, [0, 2]] - target_pos[[0, 2]]).norm())
    turned_b0 = _turn(out[b0:b0 + 1], d_yaw.expand(1), pivot)[0, PELVIS]
    shift = target_pos - turned_b0
    shift[1] = 0.0
    k = torch.arange(out.shape[0], dtype=out.dtype)
    u = ((k - (c - 1)) / (b0 - (c - 1))).clamp(0, 1)
    w = u ** 3 * (u * (6 * u - 15) + 10)          # smootherstep 0 -> 1: zero slope and curvature at both ends
    bent = _turn(out, w * d_yaw, pivot) + w[:, None, None] * shift
    return Placed(bent, before_m, math.degrees(abs(float(d_yaw))))


# ----------------------------------------------------------------------------- motions


def _genre_of(genre: int | None, *motions: MotionInput) -> int:
    if genre is not None:
        return genre
    for m in motions:
        if m.genre_id:
            return m.genre_id
    return 0


def inbetween(gm: GenerationModel, prior: LoadedPrior, a: MotionInput, b: MotionInput, gap: int, *,
              genre: int | None = None, steps: int, solver: str, guidance: float, decoder_guidance: float = 1.0,
              seed: int = 0, foot_lock: bool = True, seam: Seam | None = None) -> tuple[GeneratedMotion, Placed]:
    """From the end of A to the start of B in `gap` frames: [A's last c | gap | B's first c] frames.

    Domain: A's; genre: `genre`, else A's or B's own, else 0 (unknown). Joints are in A's frame when A
    has joints (a features input has none: then the canonical frame, without the bend to B); with
    `foot_lock`, feet the decoded contact labels plant are pinned (`generation.footlock`).
    """
    c = context_frames(prior.window, gap, (a.features.shape[0], b.features.shape[0]))
    gid, domain = _genre_of(genre, a, b), a.domain
    z_a, z_b = encode_input(gm, a).cpu()[:, -c:], encode_input(gm, b).cpu()[:, :c]
    z = inbetween_latents(prior, z_a, z_b, gap, DOMAINS.index(domain), gid, steps=steps, solver=solver,
                          guidance=guidance, generator=torch.Generator().manual_seed(seed), seam=seam)
    feats = decode_latents(gm, z, domain, gid, decoder_guidance)[0]                 # (2c + gap, 263)
    joints = features_to_joints(feats)
    placed = None
    if a.joints is not None and b.joints is not None:
        n_a = a.features.shape[0]
        placed = place_between(joints, a.joints[n_a - c:], b.joints, c, gap)
        joints = placed.joints
    if foot_lock:
        joints = lock_feet(joints, feats[:, CONTACTS])
    motion = GeneratedMotion(joints=joints.numpy().astype(np.float32), features=feats.numpy().astype(np.float32),
                             fps=a.fps, domain=domain, genre_id=gid, source=f"{a.source} -> {b.source}",
                             checkpoint_sha256=gm.sha256, canonical=placed is None)
    return motion, placed


def continue_motion(gm: GenerationModel, prior: LoadedPrior, prefix: MotionInput, new: int, *, genre: int,
                    context: int, steps: int, solver: str, guidance: float, decoder_guidance: float = 1.0,
                    seed: int = 0, foot_lock: bool = True, seam: Seam | None = None) -> GeneratedMotion:
    """The prefix's last `context` frames (at most half the prior's window) and `new` generated frames
    after them, in the prefix's frame (`place_on_context`); `foot_lock`, `seam` as `inbetween`."""
    c = min(context, prefix.features.shape[0], prior.window // 2)
    z_p = encode_input(gm, prefix).cpu()[:, -c:]
    z = continue_latents(prior, z_p, new, DOMAINS.index(prefix.domain), genre, steps=steps, solver=solver,
                         guidance=guidance, generator=torch.Generator().manual_seed(seed), seam=seam)
    feats = decode_latents(gm, z, prefix.domain, genre, decoder_guidance)[0]
    joints = features_to_joints(feats)
    if prefix.joints is not None:
        joints = place_on_context(joints, prefix.joints[prefix.features.shape[0] - c:], c)
    if foot_lock:
        joints = lock_feet(joints, feats[:, CONTACTS])
    return GeneratedMotion(joints=joints.numpy().astype(np.float32), features=feats.numpy().astype(np.float32),
                           fps=prefix.fps, domain=prefix.domain, genre_id=genre, source=prefix.source,
                           checkpoint_sha256=gm.sha256, canonical=prefix.joints is None)
