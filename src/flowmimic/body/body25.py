"""SMPL joints -> OpenPose BODY-25 keypoints (the seed's `def_aist2body25.json` idea).

A public library utility (see the README's "Library extras"): no pipeline stage uses it, so it is
in no stage's DVC deps; `tests/test_body25.py` keeps it correct.

Each BODY-25 keypoint is the mean of one or two source joints. The table below is the one
place for that mapping. Choices (BODY-25 order from OpenPose's `poseParameters.cpp`):

- Limb keypoints are SMPL's joints of the same name (shoulders 16/17, elbows 18/19, wrists
  20/21, hips 1/2, knees 4/5, ankles 7/8).
- MidHip is the mean of the two hips, not SMPL's pelvis (joint 0): OpenPose places MidHip on the
  line between its hip keypoints, while SMPL's pelvis sits above and behind that line.
- Neck is the mean of the two shoulders, not SMPL's neck (joint 12): OpenPose's neck is the
  shoulder midpoint (as in COCO-18, where it is derived from the shoulders), while SMPL's neck
  joint is higher, at the base of the skull.
- Face (nose, eyes, ears) and foot (big toe, small toe, heel) keypoints have no SMPL joint. From
  22 or 24 joints they are NaN, unless `approximate=True`: face keypoints -> head (15), toes ->
  the foot joint (10/11, the ball of the foot), heels -> the ankle (7/8). From the 45 joints of
  smplx's SMPL output (24 joints, then the vertex keypoints nose, reye, leye, rear, lear,
  LBigToe, LSmallToe, LHeel, RBigToe, RSmallToe, RHeel, then 10 fingertips; smplx
  `VertexJointSelector`) — what MVHumanNet's `joints` key holds — they are those vertices.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from flowmimic.body.skeleton import N_JOINTS, N_SMPL_JOINTS

BODY25_NAMES: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
N_BODY25 = len(BODY25_NAMES)
N_SMPLX_SMPL_JOINTS = 45  # smplx.SMPL output: 24 joints + 21 vertex keypoints

# keypoint -> SMPL joints averaged (22/24-joint input); () = no SMPL joint.
BODY25_FROM_SMPL: dict[str, tuple[int, ...]] = {
    "Nose": (), "Neck": (16, 17),
    "RShoulder": (17,), "RElbow": (19,), "RWrist": (21,),
    "LShoulder": (16,), "LElbow": (18,), "LWrist": (20,),
    "MidHip": (1, 2),
    "RHip": (2,), "RKnee": (5,), "RAnkle": (8,),
    "LHip": (1,), "LKnee": (4,), "LAnkle": (7,),
    "REye": (), "LEye": (), "REar": (), "LEar": (),
    "LBigToe": (), "LSmallToe": (), "LHeel": (),
    "RBigToe": (), "RSmallToe": (), "RHeel": (),
}
# Stand-ins for the keypoints above without an SMPL joint (`approximate=True`).
BODY25_APPROX: dict[str, tuple[int, ...]] = {
    "Nose": (15,), "REye": (15,), "LEye": (15,), "REar": (15,), "LEar": (15,),
    "LBigToe": (10,), "LSmallToe": (10,), "LHeel": (7,),
    "RBigToe": (11,), "RSmallToe": (11,), "RHeel": (8,),
}
# Index in smplx's 45-joint SMPL output of each vertex keypoint.
BODY25_FROM_SMPLX_VERTICES: dict[str, int] = {
    "Nose": 24, "REye": 25, "LEye": 26, "REar": 27, "LEar": 28,
    "LBigToe": 29, "LSmallToe": 30, "LHeel": 31, "RBigToe": 32, "RSmallToe": 33, "RHeel": 34,
}


@functools.lru_cache(maxsize=8)
def _gather_table(n_joints: int, approximate: bool) -> tuple[Tensor, Tensor]:
    """(25, 2) source indices and (25,) missing mask; single sources are listed twice."""
    idx, missing = [], []
    for name in BODY25_NAMES:
        src = BODY25_FROM_SMPL[name]
        if not src and n_joints == N_SMPLX_SMPL_JOINTS:
            src = (BODY25_FROM_SMPLX_VERTICES[name],)
        elif not src and approximate:
            src = BODY25_APPROX[name]
        missing.append(not src)
        src = src or (0,)
        idx.append((src[0], src[-1]))
    return torch.tensor(idx), torch.tensor(missing)


def smpl_to_body25(joints: Tensor, approximate: bool = False) -> Tensor:
    """OpenPose BODY-25 keypoints from SMPL joints (see the module docstring for the mapping).

    Args:
        joints: (..., J, 3) with J = 22 (HumanML3D), 24 (SMPL) or 45 (smplx's SMPL output).
        approximate: fill face/toe/heel keypoints from nearby joints instead of NaN (22/24 only).
    Returns:
        (..., 25, 3) in `joints`' dtype. Each keypoint depends only on its own source joints,
        so NaN elsewhere in the input (e.g. unused hand joints) does not spread.
    """
    n = joints.shape[-2] if joints.dim() >= 2 else -1
    if joints.dim() < 2 or joints.shape[-1] != 3 or n not in (N_JOINTS, N_SMPL_JOINTS, N_SMPLX_SMPL_JOINTS):
        raise ValueError(f"joints must be (..., 22|24|45, 3), got {tuple(joints.shape)}")
    idx, missing = _gather_table(n, approximate)
    idx, missing = idx.to(joints.device), missing.to(joints.device)
    pair = joints[..., idx.reshape(-1), :].reshape(*joints.shape[:-2], N_BODY25, 2, 3)
    out = 0.5 * (pair[..., 0, :] + pair[..., 1, :])
    return torch.where(missing[:, None], torch.full_like(out, float("nan")), out)


__all__ = ["BODY25_NAMES", "BODY25_FROM_SMPL", "BODY25_APPROX", "BODY25_FROM_SMPLX_VERTICES",
           "smpl_to_body25"]
