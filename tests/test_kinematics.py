"""Forward kinematics: rest pose, rigid bones, batching, input layouts, smplx's rigid transform."""

from __future__ import annotations

import pytest
import torch
from smplx.lbs import batch_rigid_transform

from flowmimic.body.kinematics import smpl_forward_kinematics
from flowmimic.body.rotation import axis_angle_to_matrix
from flowmimic.body.skeleton import SMPL_PARENTS, default_rest_joints

D = torch.float64
PARENTS = torch.tensor(SMPL_PARENTS)


def _poses(*lead: int, seed: int = 0, scale: float = 0.8) -> torch.Tensor:
    return torch.randn(*lead, 72, generator=torch.Generator().manual_seed(seed), dtype=D) * scale


def _bone_lengths(joints: torch.Tensor) -> torch.Tensor:
    return (joints[..., 1:, :] - joints[..., PARENTS[1:], :]).norm(dim=-1)


def test_zero_pose_gives_rest_joints_plus_transl() -> None:
    rest = default_rest_joints(D)
    transl = torch.tensor([[0.3, 1.0, -2.0], [0.0, 0.0, 0.0]], dtype=D)
    out = smpl_forward_kinematics(torch.zeros(2, 72, dtype=D), rest, transl)
    torch.testing.assert_close(out, rest + transl[:, None], rtol=0, atol=1e-15)
    torch.testing.assert_close(smpl_forward_kinematics(torch.zeros(72, dtype=D), rest), rest, rtol=0, atol=0)


def test_bone_lengths_preserved_under_random_poses() -> None:
    rest = default_rest_joints(D)
    out = smpl_forward_kinematics(_poses(50, seed=1), rest, torch.randn(50, 3, dtype=D))
    torch.testing.assert_close(_bone_lengths(out), _bone_lengths(rest).expand(50, 23), rtol=0, atol=1e-12)
    assert (out - rest).abs().max() > 0.1          # the pose did move the joints


def test_global_orientation_rotates_about_the_pelvis() -> None:
    rest = default_rest_joints(D)
    aa = torch.tensor([0.3, -1.2, 0.5], dtype=D)
    poses = torch.zeros(24, 3, dtype=D)
    poses[0] = aa
    expected = (rest - rest[0]) @ axis_angle_to_matrix(aa).T + rest[0]
    torch.testing.assert_close(smpl_forward_kinematics(poses, rest), expected, rtol=0, atol=1e-14)


def test_matches_smplx_rigid_transform() -> None:
    g = torch.Generator().manual_seed(2)
    rest = default_rest_joints(D)[None] + 0.02 * torch.randn(8, 24, 3, generator=g, dtype=D)
    poses = _poses(8, seed=3)
    rot = axis_angle_to_matrix(poses.reshape(8, 24, 3))
    ref, _ = batch_rigid_transform(rot, rest, PARENTS, dtype=D)
    torch.testing.assert_close(smpl_forward_kinematics(poses, rest), ref, rtol=0, atol=1e-12)


def test_batched_over_sequences_and_frames() -> None:
    b, t = 3, 5
    poses, transl = _poses(b, t, seed=4), torch.randn(b, t, 3, dtype=D)
    rest = default_rest_joints(D)[None] * torch.tensor([0.9, 1.0, 1.1], dtype=D)[:, None, None]  # (B, 24, 3)
    out = smpl_forward_kinematics(poses, rest[:, None], transl)
    assert out.shape == (b, t, 24, 3)
    for i in range(b):
        for j in range(t):
            torch.testing.assert_close(out[i, j], smpl_forward_kinematics(poses[i, j], rest[i], transl[i, j]))


def test_flat_and_per_joint_poses_agree() -> None:
    poses = _poses(4, 6, seed=5)
    rest = default_rest_joints(D)
    flat = smpl_forward_kinematics(poses, rest)
    per_joint = smpl_forward_kinematics(poses.reshape(4, 6, 24, 3), rest)
    assert torch.equal(flat, per_joint) and flat.shape == (4, 6, 24, 3)


def test_dtype_follows_poses() -> None:
    out = smpl_forward_kinematics(_poses(2).float(), default_rest_joints(D))
    assert out.dtype == torch.float32


@pytest.mark.parametrize("poses,rest", [
    (torch.zeros(5, 70), default_rest_joints()),
    (torch.zeros(5, 24, 4), default_rest_joints()),
    (torch.zeros(5, 72), torch.zeros(22, 3)),
])
def test_bad_shapes_raise(poses: torch.Tensor, rest: torch.Tensor) -> None:
    with pytest.raises(ValueError):
        smpl_forward_kinematics(poses, rest)
