"""Foot locking: remove foot skating from generated joint positions, the standard animation clean-up.

A motion decoded by the VAE can slide a foot that its own contact labels say is on the floor.
`lock_feet` pins such a foot in joint-position space, after the idea of Kovar, Schreiner & Gleicher,
"Footskate Cleanup for Motion Capture Editing" (SCA 2002): hold the foot at one place while it is
planted, and re-solve the leg so that the rest of the body is untouched. The code is written here.

Per foot (left, right), on SMPL-22 joints (F, 22, 3), metres, y-up:

1. Planted frames: the toe label OR the ankle label is 1 (HumanML3D's labels threshold each joint's
   speed separately, so a stance phase shows as heel-only, both, toe-only; the union keeps it one
   run instead of splitting it at the heel-to-toe hand-over). Maximal runs of at least `min_run`
   planted frames are locked; shorter ones are treated as not planted.
2. Lock position: the toe's horizontal (x, z) position averaged over the run; the mean minimises the
   summed squared correction, i.e. it moves the foot least (the first frame's position would push
   the whole run's correction to one side). Within a run the correction is d_t = lock - toe_xz(t);
   y is never changed.
3. Blend: outside runs the correction falls to 0 over `blend_frames` frames on each side with a
   smoothstep weight 3s^2 - 2s^3 (gentlest maximum slope, 1.5, of the usual smooth steps). Where
   two runs are at most 2 * blend_frames frames apart, the gap instead moves smoothly from one run's
   edge correction to the next one's, so the foot is not pulled back to its raw path in between.
4. The ankle and toe move rigidly by d_t; the knee is re-solved by analytic two-bone IK: hip fixed,
   thigh and shin lengths of that frame kept, knee in the plane of the hip -> new ankle line and
   the original knee (the pole). A new ankle out of reach is pulled back along the hip -> ankle
   line to 0.999 of full reach (or out to just beyond |thigh - shin|), the toe following it.
5. Only the two foot joints and the knee of a corrected leg change, and only in frames whose
   correction is non-zero; every other joint and frame is returned bit-identical.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowmimic.body.skeleton import L_HIP, L_KNEE, LEFT_FOOT, N_JOINTS, R_HIP, R_KNEE, RIGHT_FOOT

# (hip, knee, ankle, toe, ankle contact channel, toe contact channel) of the left and right leg;
# the contact channels are HumanML3D's order (left ankle, left toe, right ankle, right toe).
_LEGS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (L_HIP, L_KNEE, LEFT_FOOT[0], LEFT_FOOT[1], 0, 1),
    (R_HIP, R_KNEE, RIGHT_FOOT[0], RIGHT_FOOT[1], 2, 3),
)
REACH_MAX = 0.999     # a locked ankle stays within this share of thigh + shin from the hip
REACH_MIN = 0.001     # ... and at least |thigh - shin| + this share of thigh + shin
_XZ = [0, 2]


def _smoothstep(s: Tensor) -> Tensor:
    s = s.clamp(0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def _runs(planted: Tensor, min_run: int) -> list[tuple[int, int]]:
    """(F,) bool -> maximal runs of True as inclusive (start, end) frames, those of length >= min_run."""
    flags = planted.tolist()
    runs, start = [], None
    for t, p in enumerate(flags + [False]):
        if p and start is None:
            start = t
        elif not p and start is not None:
            if t - start >= min_run:
                runs.append((start, t - 1))
            start = None
    return runs


def _correction(toe_xz: Tensor, runs: list[tuple[int, int]], blend: int) -> Tensor:
    """(F, 2) toe horizontal positions -> (F, 2) horizontal correction of the foot (see the module docstring)."""
    n = toe_xz.shape[0]
    corr = torch.zeros_like(toe_xz)
    for s, e in runs:
        corr[s:e + 1] = toe_xz[s:e + 1].mean(dim=0) - toe_xz[s:e + 1]
    if blend == 0 or not runs:
        return corr
    # Fade-in before the first run and fade-out after the last, over at most `blend` frames.
    s0, e_last = runs[0][0], runs[-1][1]
    k = torch.arange(1, min(blend, s0) + 1, dtype=toe_xz.dtype)                      # distance before s0
    corr[s0 - k.long()] = corr[s0] * _smoothstep(1.0 - k / (blend + 1))[:, None]
    k = torch.arange(1, min(blend, n - 1 - e_last) + 1, dtype=toe_xz.dtype)
    corr[e_last + k.long()] = corr[e_last] * _smoothstep(1.0 - k / (blend + 1))[:, None]
    for (_, e), (s, _) in zip(runs[:-1], runs[1:]):
        gap = s - e - 1
        k = torch.arange(1, gap + 1, dtype=toe_xz.dtype)
        if gap <= 2 * blend:
            w = _smoothstep(k / (gap + 1))[:, None]
            corr[e + 1:s] = corr[e] * (1.0 - w) + corr[s] * w
        else:
            kb = k[:blend]
            w = _smoothstep(1.0 - kb / (blend + 1))[:, None]
            corr[e + 1:e + 1 + blend] = corr[e] * w
            corr[s - blend:s] = corr[s] * w.flip(0)
    return corr


def _unit(v: Tensor) -> tuple[Tensor, Tensor]:
    norm = v.norm(dim=-1, keepdim=True)
    return v / norm.clamp_min(1e-12), norm


def _pole_direction(pole: Tensor, u: Tensor, fallback: Tensor) -> Tensor:
    """Unit component of `pole` perpendicular to unit `u`; `fallback`'s where that vanishes, then any."""
    def perp(v: Tensor) -> Tensor:
        return v - (v * u).sum(-1, keepdim=True) * u

    v, n = _unit(perp(pole))
    vf, nf = _unit(perp(fallback))
    # Any perpendicular: u x (the axis least aligned with u).
    axis = torch.nn.functional.one_hot(u.abs().argmin(dim=-1), 3).to(u.dtype)
    va, _ = _unit(torch.linalg.cross(u, axis))
    return torch.where(n > 1e-9, v, torch.where(nf > 1e-9, vf, va))


def _solve_leg(hip: Tensor, knee: Tensor, ankle: Tensor, new_ankle: Tensor) -> tuple[Tensor, Tensor]:
    """Two-bone IK per frame: (M, 3) each -> (knee', pull) with the hip fixed, the thigh and shin of
    the input kept, the knee in the plane of hip -> ankle' and the original knee, where
    ankle' = new_ankle + pull is the target clamped into reach along the hip -> target line
    (pull is exactly 0 where no clamp is needed, so the target's height stays bit-exact)."""
    thigh = (knee - hip).norm(dim=-1, keepdim=True)
    shin = (ankle - knee).norm(dim=-1, keepdim=True)
    u, dist = _unit(new_ankle - hip)
    lo = (thigh - shin).abs() + REACH_MIN * (thigh + shin)
    d = dist.clamp(min=lo, max=REACH_MAX * (thigh + shin))
    pull = torch.where(d != dist, hip + u * d - new_ankle, torch.zeros_like(new_ankle))
    along = (thigh ** 2 - shin ** 2 + d ** 2) / (2.0 * d)                # knee's projection on the hip-ankle line
    height = (thigh ** 2 - along ** 2).clamp_min(0.0).sqrt()
    # Fallback pole when the knee lies on the new hip-ankle line: its bend off the original line.
    u0, _ = _unit(ankle - hip)
    off_line = (knee - hip) - ((knee - hip) * u0).sum(-1, keepdim=True) * u0
    bend = _pole_direction(knee - hip, u, off_line)
    return hip + u * along + bend * height, pull


def lock_feet(joints: Tensor, contacts: Tensor, *, blend_frames: int = 3, min_run: int = 2) -> Tensor:
    """Pin feet labelled as planted so that they stop sliding horizontally (see the module docstring).

    Args:
        joints: (F, 22, 3) float SMPL-22 joint positions, metres, y-up (floor at y = 0).
        contacts: (F, 4) or (F - 1, 4) 0/1 labels in HumanML3D's order (left ankle, left toe, right
            ankle, right toe), e.g. the last 4 channels of the 263-D features (which have one frame
            fewer than the joints: the last frame then repeats the previous label). A label counts
            as set when >= 0.5.
        blend_frames: frames on each side of a locked run over which the correction fades in/out.
        min_run: shortest run of planted frames that is locked.

    Returns:
        New (F, 22, 3) joints of the input's dtype; the input is not modified.
    """
    if not torch.is_tensor(joints) or joints.ndim != 3 or joints.shape[1:] != (N_JOINTS, 3):
        raise ValueError(f"lock_feet: joints must be (F, {N_JOINTS}, 3), got {tuple(getattr(joints, 'shape', ()))}")
    if not joints.is_floating_point():
        raise ValueError(f"lock_feet: joints must be a float tensor, got {joints.dtype}")
    n = joints.shape[0]
    if n < 1:
        raise ValueError("lock_feet: joints has no frames")
    if not torch.is_tensor(contacts) or contacts.ndim != 2 or contacts.shape[1] != 4 \
            or contacts.shape[0] not in (n, n - 1):
        raise ValueError(f"lock_feet: contacts must be (F, 4) or (F - 1, 4) with F = {n} frames, "
                         f"got {tuple(getattr(contacts, 'shape', ()))}")
    if blend_frames < 0 or min_run < 1:
        raise ValueError(f"lock_feet: need blend_frames >= 0 and min_run >= 1, got {blend_frames}, {min_run}")

    labels = contacts.detach().to(device=joints.device) >= 0.5
    if labels.shape[0] == n - 1:
        pad = labels[-1:] if n > 1 else torch.zeros(1, 4, dtype=torch.bool, device=joints.device)
        labels = torch.cat((labels, pad), dim=0)

    src = joints.detach().to(torch.float64)
    out = joints.detach().clone()
    for hip_j, knee_j, ankle_j, toe_j, ankle_c, toe_c in _LEGS:
        runs = _runs(labels[:, ankle_c] | labels[:, toe_c], min_run)
        if not runs:
            continue
        corr = _correction(src[:, toe_j, _XZ], runs, blend_frames)
        frames = (corr != 0).any(dim=-1).nonzero().squeeze(-1)
        if frames.numel() == 0:
            continue
        leg = src[frames]
        shift = torch.zeros_like(leg[:, 0])
        shift[:, _XZ] = corr[frames]
        target = leg[:, ankle_j] + shift
        knee, pull = _solve_leg(leg[:, hip_j], leg[:, knee_j], leg[:, ankle_j], target)
        out[frames, knee_j] = knee.to(out.dtype)
        out[frames, ankle_j] = (target + pull).to(out.dtype)
        out[frames, toe_j] = (leg[:, toe_j] + shift + pull).to(out.dtype)     # the foot moves rigidly
    return out
