"""Joint positions -> local joint rotations on one fixed skeleton (the exporters' IK), and back.

BVH and SMPL both describe a body as a rest skeleton (one offset per joint from its parent) posed
by one rotation per joint: joint c sits at `pos[p] + R_world[p] @ offset[c]` (p = c's parent) and
`R_world[c] = R_world[p] @ local[c]`. `joints_to_local_rotations` solves the local rotations of
the SMPL-22 hierarchy from joint positions, all frames at once, parents before children:

- a joint with one child (knees, elbows, ...) gets the smallest rotation, in its parent's frame,
  that turns its child's rest offset towards the child's target position (no twist: positions
  cannot see twist);
- a joint with several children (the pelvis: hips and spine; spine3: neck and collars) gets the
  rotation that best maps its children's rest offsets onto their targets (Kabsch, least squares);
- a leaf (feet, head, wrists) keeps its parent's orientation.
Each joint aims from where forward kinematics has put it so far, not from its own target, so an
error at one joint (a bone of another length, a differently shaped pelvis) shrinks down the chain
instead of being carried to every joint below it.

With bone lengths equal to the offsets' and the children of each multi-child joint in the rest
configuration (a rigid pelvis and chest, as SMPL fits have), this reproduces every joint exactly.
`skeleton_offsets` builds such a rest skeleton from a motion: a T-pose (the built-in SMPL rest
pose's bone directions) with the motion's median bone lengths or HumanML3D's target lengths, and the
motion's own (median) pelvis and chest shape. Motions whose bones stretch (model outputs, noisy
joints) cannot be reproduced exactly by any fixed skeleton: `bone_fix_error` measures what fixing
the bones costs.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from flowmimic.body.kinematics import smpl_forward_kinematics
from flowmimic.body.rotation import matrix_to_axis_angle, quat_to_matrix
from flowmimic.body.skeleton import N_JOINTS, PARENTS, TARGET_BONE_LENGTHS, default_rest_joints
from flowmimic.features.humanml3d import between_unit_vectors

Skeleton = Literal["median", "target"]
SKELETONS: tuple[str, ...] = ("median", "target")

CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(c for c in range(N_JOINTS) if PARENTS[c] == j) for j in range(N_JOINTS))
LEAVES: tuple[int, ...] = tuple(j for j in range(N_JOINTS) if not CHILDREN[j])
# Joints whose orientation is fixed by several children: the pelvis (0) and spine3 (9).
_GROUPS: tuple[int, ...] = tuple(j for j in range(N_JOINTS) if len(CHILDREN[j]) > 1)


class BoneFixError(NamedTuple):
    """Joint position error (m) of a motion re-posed on a fixed skeleton, over all joints and frames."""

    mean_m: float
    max_m: float


def check_joints(joints: Tensor | np.ndarray) -> Tensor:
    """(T, 22, 3) finite joints, T >= 1 -> float64 tensor; ValueError naming the problem otherwise."""
    j = torch.as_tensor(np.asarray(joints) if not isinstance(joints, Tensor) else joints)
    if j.dim() != 3 or tuple(j.shape[1:]) != (N_JOINTS, 3) or j.shape[0] < 1:
        raise ValueError(f"joints must have shape (T, {N_JOINTS}, 3) with T >= 1, got {tuple(j.shape)}")
    if j.is_complex() or j.dtype == torch.bool:
        raise ValueError(f"joints must be real numbers, got dtype {j.dtype}")
    j = j.detach().cpu().to(torch.float64)
    bad = ~torch.isfinite(j).flatten(1).all(1)
    if bool(bad.any()):
        raise ValueError(f"joints contain NaN/Inf at frames {bad.nonzero().flatten()[:10].tolist()}")
    return j


def _bones(joints: Tensor) -> Tensor:
    """(T, 22, 3) -> (T, 22, 3) vectors from each joint's parent (zero for the root)."""
    parents = torch.tensor((0,) + PARENTS[1:])
    return joints - joints[:, parents]


def _kabsch(src: Tensor, dst: Tensor) -> Tensor:
    """Rotations R (..., 3, 3) minimising sum_i |R src_i - dst_i|^2 for (..., n, 3) point sets
    (Kabsch 1976, with the reflection fix: det R = +1)."""
    h = src.transpose(-1, -2) @ dst                                    # (..., 3, 3)
    u, _, vh = torch.linalg.svd(h)
    v = vh.transpose(-1, -2)
    d = torch.sign(torch.linalg.det(v @ u.transpose(-1, -2)))
    fix = torch.diag_embed(torch.stack((torch.ones_like(d), torch.ones_like(d), d), dim=-1))
    return v @ fix @ u.transpose(-1, -2)


def _swing(u: Tensor, v: Tensor) -> Tensor:
    """(..., 3, 3) smallest rotations turning directions u onto v."""
    unit = lambda x: x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # noqa: E731
    return quat_to_matrix(between_unit_vectors(unit(u), unit(v)))


def skeleton_offsets(joints: Tensor | np.ndarray, skeleton: Skeleton = "median") -> Tensor:
    """The fixed rest skeleton (22, 3) float64 a motion is exported on (offsets from the parents).

    Args:
        joints: (T, 22, 3) metres, y-up.
        skeleton: "median": each bone gets its median length over the frames; "target":
            HumanML3D's target bone lengths (`skeleton.TARGET_BONE_LENGTHS`, a 1.7 m adult).
    Bones point the way the built-in SMPL rest pose's do (a T-pose facing +z), except the children
    of the pelvis and spine3, which keep the motion's own shape: the median, over frames, of those
    bones seen from their joint's best-fitting (Kabsch) orientation, each scaled to its length.
    """
    j = check_joints(joints)
    bones = _bones(j)
    if skeleton == "median":
        lengths = bones.norm(dim=-1).median(dim=0).values
    elif skeleton == "target":
        lengths = torch.tensor(TARGET_BONE_LENGTHS, dtype=torch.float64)
    else:
        raise ValueError(f"skeleton must be one of {SKELETONS}, got {skeleton!r}")
    rest = default_rest_joints(torch.float64)[:N_JOINTS]
    directions = _bones(rest[None])[0]
    directions = directions / directions.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    offsets = directions * lengths[:, None]
    for g in _GROUPS:
        kids = list(CHILDREN[g])
        orient = _kabsch(offsets[kids].expand(j.shape[0], -1, -1), bones[:, kids])     # (T, 3, 3)
        shape = (orient.transpose(-1, -2) @ bones[:, kids].transpose(-1, -2)).transpose(-1, -2)
        shape = shape.median(dim=0).values                                              # (k, 3)
        offsets[kids] = shape / shape.norm(dim=-1, keepdim=True).clamp_min(1e-12) * lengths[kids, None]
    return offsets


def joints_to_local_rotations(joints: Tensor | np.ndarray, offsets: Tensor) -> tuple[Tensor, Tensor]:
    """Local joint rotations that pose the rest skeleton `offsets` like `joints` (see module doc).

    Args:
        joints: (T, 22, 3) joint positions.
        offsets: (22, 3) rest offsets from the parents (`skeleton_offsets`, or an SMPL model's
            rest joints minus their parents'); row 0 is ignored.
    Returns:
        local: (T, 22, 3, 3) float64 rotations (joint 0: the root's world orientation);
        root: (T, 3) float64 root (pelvis) positions.
    """
    j = check_joints(joints)
    off = offsets.to(torch.float64)
    if tuple(off.shape) != (N_JOINTS, 3):
        raise ValueError(f"offsets must have shape ({N_JOINTS}, 3), got {tuple(off.shape)}")
    eye = torch.eye(3, dtype=torch.float64).expand(j.shape[0], 3, 3)
    world: list[Tensor] = []
    local: list[Tensor] = []
    pos: list[Tensor | None] = [j[:, 0]] + [None] * (N_JOINTS - 1)     # posed positions so far
    for joint in range(N_JOINTS):                       # SMPL order lists parents first
        parent_rot = world[PARENTS[joint]] if joint > 0 else eye
        here = pos[joint]
        assert here is not None
        kids = list(CHILDREN[joint])
        if not kids:
            rot = eye
        else:
            # Aim from where the joint landed (not where it should be) at the children's targets,
            # seen in the parent's frame: then an error at one joint is not passed down the chain
            # (for exact data both are the same).
            seen = (parent_rot.transpose(-1, -2) @ (j[:, kids] - here[:, None]).transpose(-1, -2)
                    ).transpose(-1, -2)
            if len(kids) == 1:
                rot = _swing(off[kids[0]].expand_as(seen[:, 0]), seen[:, 0])
            else:
                rot = _kabsch(off[kids].expand(j.shape[0], -1, -1), seen)
        local.append(rot)
        world.append(parent_rot @ rot)
        for kid in kids:
            pos[kid] = here + (world[joint] @ off[kid][:, None])[..., 0]
    return torch.stack(local, dim=1), j[:, 0].clone()


def local_rotations_to_joints(local: Tensor, offsets: Tensor, root: Tensor) -> Tensor:
    """Forward kinematics of `joints_to_local_rotations`' output: (T, 22, 3) float64 joints."""
    rest = torch.zeros(N_JOINTS, 3, dtype=torch.float64)
    for c in range(1, N_JOINTS):
        rest[c] = rest[PARENTS[c]] + offsets[c].to(torch.float64)
    return smpl_forward_kinematics(matrix_to_axis_angle(local.to(torch.float64)), rest,
                                   root.to(torch.float64), parents=PARENTS)


def bone_fix_error(joints: Tensor | np.ndarray, skeleton: Skeleton = "median") -> BoneFixError:
    """What exporting on one fixed skeleton costs: the joint error (m) of the motion re-posed on
    `skeleton_offsets(joints, skeleton)` by `joints_to_local_rotations`. Zero (to rounding) for
    constant bones and a rigid pelvis and chest; positive for stretching bones (model outputs)."""
    j = check_joints(joints)
    offsets = skeleton_offsets(j, skeleton)
    local, root = joints_to_local_rotations(j, offsets)
    err = (local_rotations_to_joints(local, offsets, root) - j).norm(dim=-1)
    return BoneFixError(mean_m=float(err.mean()), max_m=float(err.max()))


__all__ = [
    "BoneFixError", "CHILDREN", "LEAVES", "SKELETONS", "Skeleton", "bone_fix_error", "check_joints",
    "joints_to_local_rotations", "local_rotations_to_joints", "skeleton_offsets",
]
