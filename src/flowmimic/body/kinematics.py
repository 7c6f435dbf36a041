"""Forward kinematics of the SMPL skeleton, batched over any leading dimensions.

SMPL's joints depend on the pose only through its rigid kinematic chain (the mesh's pose blend
shapes do not move them), so joint positions are computed here without the 6890-vertex mesh:
each joint's world rotation is its parent's times its own, and each joint sits at its parent's
position plus the parent's world rotation applied to the rest-pose bone. This is what smplx's
`batch_rigid_transform` computes for the first 24 joints, at a fraction of the cost.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from flowmimic.body.rotation import axis_angle_to_matrix
from flowmimic.body.skeleton import SMPL_PARENTS


def smpl_forward_kinematics(
    poses: Tensor,
    rest_joints: Tensor,
    transl: Tensor | None = None,
    parents: tuple[int, ...] = SMPL_PARENTS,
) -> Tensor:
    """Joint positions from SMPL axis-angle poses.

    Args:
        poses: (..., J*3) or (..., J, 3) axis-angle, joint 0 the global orientation.
        rest_joints: (J, 3) or (..., J, 3) rest-pose joints (broadcast against `poses`' leading dims),
            e.g. `default_rest_joints()` or `SmplModel.rest_joints(betas)`.
        transl: (..., 3) translation added to every joint (SMPL's `transl`), or None.
        parents: parent index of each joint (-1 for the root).
    Returns:
        (..., J, 3) joint positions, same dtype as `poses`.
    """
    n = len(parents)
    if poses.shape[-1] == n * 3 and (poses.dim() < 2 or poses.shape[-2:] != (n, 3)):
        poses = poses.reshape(*poses.shape[:-1], n, 3)
    if poses.shape[-2:] != (n, 3):
        raise ValueError(f"poses must be (..., {n * 3}) or (..., {n}, 3), got {tuple(poses.shape)}")
    if rest_joints.shape[-2:] != (n, 3):
        raise ValueError(f"rest_joints must be (..., {n}, 3), got {tuple(rest_joints.shape)}")
    rest_joints = rest_joints.to(poses.dtype)
    # numpy's, not torch.broadcast_shapes: torch's imports sympy on its first call (~0.8 s), which every
    # fresh cache worker would pay again
    lead = np.broadcast_shapes(tuple(poses.shape[:-2]), tuple(rest_joints.shape[:-2]))
    local = axis_angle_to_matrix(poses).expand(*lead, n, 3, 3)
    rest = rest_joints.expand(*lead, n, 3)
    world_rot: list[Tensor] = [local[..., 0, :, :]]
    world_pos: list[Tensor] = [rest[..., 0, :]]
    for j in range(1, n):
        p = parents[j]
        bone = (rest[..., j, :] - rest[..., p, :])[..., None]          # (..., 3, 1)
        world_pos.append(world_pos[p] + (world_rot[p] @ bone)[..., 0])
        world_rot.append(world_rot[p] @ local[..., j, :, :])
    joints = torch.stack(world_pos, dim=-2)
    if transl is not None:
        joints = joints + transl[..., None, :].to(joints.dtype)
    return joints

