"""SMPL -> OpenPose BODY-25 mapping."""

from __future__ import annotations

import pytest
import torch

from flowmimic.body.body25 import (
    BODY25_APPROX,
    BODY25_FROM_SMPL,
    BODY25_FROM_SMPLX_VERTICES,
    BODY25_NAMES,
    smpl_to_body25,
)
from flowmimic.body.skeleton import SMPL_JOINT_NAMES

K = {name: i for i, name in enumerate(BODY25_NAMES)}
S = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
NO_SMPL_JOINT = ("Nose", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe", "LHeel",
                 "RBigToe", "RSmallToe", "RHeel")


def _joints(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_table_covers_body25_in_openpose_order() -> None:
    assert len(BODY25_NAMES) == 25 and BODY25_NAMES[:2] == ("Nose", "Neck")
    assert BODY25_NAMES[8] == "MidHip" and BODY25_NAMES[24] == "RHeel"
    assert set(BODY25_FROM_SMPL) == set(BODY25_NAMES)
    assert {k for k, v in BODY25_FROM_SMPL.items() if not v} == set(NO_SMPL_JOINT)
    assert set(BODY25_APPROX) == set(BODY25_FROM_SMPLX_VERTICES) == set(NO_SMPL_JOINT)


def test_limbs_midhip_and_neck() -> None:
    j = _joints(2, 7, 24)
    out = smpl_to_body25(j)
    assert out.shape == (2, 7, 25, 3) and out.dtype == j.dtype
    same_name = {"RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist",
                 "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist",
                 "RHip": "right_hip", "RKnee": "right_knee", "RAnkle": "right_ankle",
                 "LHip": "left_hip", "LKnee": "left_knee", "LAnkle": "left_ankle"}
    for kp, smpl in same_name.items():
        assert torch.equal(out[..., K[kp], :], j[..., S[smpl], :]), kp
    torch.testing.assert_close(out[..., K["MidHip"], :], (j[..., 1, :] + j[..., 2, :]) / 2)
    torch.testing.assert_close(out[..., K["Neck"], :], (j[..., 16, :] + j[..., 17, :]) / 2)
    assert torch.isnan(out[..., [K[n] for n in NO_SMPL_JOINT], :]).all()
    assert torch.isfinite(out[..., [K[n] for n in BODY25_NAMES if n not in NO_SMPL_JOINT], :]).all()


def test_22_and_24_joints_agree_and_nan_does_not_spread() -> None:
    j = _joints(5, 24, seed=1)
    j[..., 22:, :] = float("nan")                 # hands unused by BODY-25
    a, b = smpl_to_body25(j, approximate=True), smpl_to_body25(j[..., :22, :], approximate=True)
    assert torch.equal(a, b) and torch.isfinite(a).all()


def test_approximations() -> None:
    j = _joints(3, 22, seed=2)
    out = smpl_to_body25(j, approximate=True)
    for kp in ("Nose", "REye", "LEye", "REar", "LEar"):
        assert torch.equal(out[:, K[kp]], j[:, 15])
    for kp, src in (("LBigToe", 10), ("LSmallToe", 10), ("LHeel", 7), ("RBigToe", 11),
                    ("RSmallToe", 11), ("RHeel", 8)):
        assert torch.equal(out[:, K[kp]], j[:, src])


def test_smplx_45_joint_output_uses_vertex_keypoints() -> None:
    j = _joints(4, 45, seed=3)
    out = smpl_to_body25(j)
    assert torch.isfinite(out).all()
    for kp, idx in BODY25_FROM_SMPLX_VERTICES.items():
        assert torch.equal(out[:, K[kp]], j[:, idx])
    torch.testing.assert_close(out[:, K["Neck"]], (j[:, 16] + j[:, 17]) / 2)


@pytest.mark.parametrize("shape", [(24,), (5, 23, 3), (5, 24, 2)])
def test_bad_shapes_raise(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="22|24|45"):
        smpl_to_body25(torch.zeros(shape))
