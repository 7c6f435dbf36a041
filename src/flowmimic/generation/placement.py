"""Putting a generated motion back where its input was.

The 263-D features define motion in a canonical frame: frame 0's pelvis at x = z = 0, the
sequence's lowest point on the floor y = 0, frame 0 facing +Z (HumanML3D's processing), and they
have one frame fewer than the joints they came from. `put_back` undoes that for an output made
from an input: it turns the output by the inverse of the input's canonical heading, moves frame 0's
pelvis onto the input's (x, z) and the canonical floor onto the input's lowest point, and restores
the input's frame count by extrapolating the missing last frame(s) at constant velocity (holding
the last pose would put a velocity jump, i.e. an acceleration spike, at the end). Bones stay on
HumanML3D's target skeleton; the pose and trajectory are the model's.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowmimic.body.rotation import quat_inv, quat_rotate
from flowmimic.body.skeleton import PELVIS
from flowmimic.features.humanml3d import canonical_heading


def extend_frames(joints: Tensor, n_frames: int) -> Tensor:
    """(N, 22, 3) -> (n_frames, 22, 3): extra frames continue the last velocity (N >= n_frames: a cut)."""
    n = joints.shape[0]
    if n >= n_frames:
        return joints[:n_frames]
    velocity = joints[-1] - joints[-2] if n >= 2 else torch.zeros_like(joints[-1])
    steps = torch.arange(1, n_frames - n + 1, dtype=joints.dtype, device=joints.device)[:, None, None]
    return torch.cat((joints, joints[-1] + steps * velocity), dim=0)


def place(canonical: Tensor, reference: Tensor) -> Tensor:
    """Joints recovered from features (N, 22, 3), canonical frame -> the frame of `reference` (T, 22, 3):
    its first frame's heading and pelvis (x, z) and its floor (lowest point); N frames kept."""
    ref = reference.to(torch.float32)
    face = canonical_heading(ref)                                                     # (4,)
    turned = quat_rotate(quat_inv(face).to(canonical.dtype).expand(*canonical.shape[:-1], 4), canonical)
    offset = torch.stack((ref[0, PELVIS, 0], ref[..., 1].amin(), ref[0, PELVIS, 2])).to(canonical.dtype)
    return turned + offset


def put_back(canonical: Tensor, reference: Tensor) -> Tensor:
    """Joints recovered from features (N, 22, 3), canonical frame -> the frame of `reference` (T, 22, 3).

    Returns (T, 22, 3) in `canonical`'s dtype: heading, frame-0 pelvis (x, z), floor and frame
    count of `reference` (see the module docstring).
    """
    return extend_frames(place(canonical, reference), reference.shape[0])
