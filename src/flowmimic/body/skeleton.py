"""SMPL joints, parents and chains, HumanML3D's 22-joint skeleton constants, the default rest pose.

The one place for joint indices and kinematic chains. Facts about HumanML3D's skeleton (chains,
raw offset directions, target bone lengths, face/foot joints) are from `features_spec.md`
(HumanML3D, Guo et al. CVPR 2022; target lengths measured on its published processed joints).
"""

from __future__ import annotations

import torch

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)
N_SMPL_JOINTS = 24
N_JOINTS = 22  # HumanML3D drops the two hand joints
JOINT_NAMES: tuple[str, ...] = SMPL_JOINT_NAMES[:N_JOINTS]
PARENTS: tuple[int, ...] = SMPL_PARENTS[:N_JOINTS]

PELVIS, HEAD = 0, 15
L_HIP, R_HIP, L_SHOULDER, R_SHOULDER = 1, 2, 16, 17
L_KNEE, R_KNEE = 4, 5

# HumanML3D's kinematic chains over the 22 joints (each starts at its chain's root).
KINEMATIC_CHAINS: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20),
)

# Unit direction of each joint from its parent in HumanML3D's reference pose (used by its IK/FK).
RAW_OFFSETS: tuple[tuple[float, float, float], ...] = (
    (0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, -1, 0), (0, 1, 0), (0, -1, 0),
    (0, -1, 0), (0, 1, 0), (0, 0, 1), (0, 0, 1), (0, 1, 0), (1, 0, 0), (-1, 0, 0), (0, 0, 1),
    (0, -1, 0), (0, -1, 0), (0, -1, 0), (0, -1, 0), (0, -1, 0), (0, -1, 0),
)

# HumanML3D's target skeleton: bone length (m) of joints 0..21 from their parents.
TARGET_BONE_LENGTHS: tuple[float, ...] = (
    0.0, 0.103074, 0.109883, 0.131568, 0.393623, 0.390188, 0.143190, 0.432433, 0.425644, 0.057365,
    0.143382, 0.149419, 0.219360, 0.137487, 0.143383, 0.103039, 0.131614, 0.122984, 0.256840,
    0.263092, 0.266012, 0.269876,
)

# (r_hip, l_hip, r_shoulder, l_shoulder) as HumanML3D names them; see features/humanml3d.py for
# the IK's different unpacking of the same tuple.
FACE_JOINTS: tuple[int, int, int, int] = (2, 1, 17, 16)
LOWER_LEGS: tuple[int, int] = (5, 8)         # scale ratio for retargeting
LEFT_FOOT: tuple[int, int] = (7, 10)         # ankle, toe base
RIGHT_FOOT: tuple[int, int] = (8, 11)


def raw_offsets(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(22, 3) unit offset directions."""
    return torch.tensor(RAW_OFFSETS, dtype=dtype)


def target_offsets(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(22, 3) HumanML3D target offsets = raw direction x target bone length."""
    return raw_offsets(dtype) * torch.tensor(TARGET_BONE_LENGTHS, dtype=dtype)[:, None]


# ----------------------------------------------------------------------------- default rest pose
# Used when no SMPL model file is configured. A T-pose (y-up, facing +z, the body's left on +x,
# like SMPL's rest pose) with adult proportions: every bone has HumanML3D's target length (above,
# a 1.7 m adult), pointing the way SMPL's rest bones point (hips down-and-out, legs straight down,
# feet forward, spine up with its slight S, arms horizontal). The hands (joints 22, 23) sit 8 cm
# past the wrists. The pelvis is at the origin, so an SMPL translation is the pelvis position.
_REST_DIRECTIONS: tuple[tuple[float, float, float], ...] = (
    (0, 0, 0),                                     # pelvis
    (0.6, -0.8, 0.0), (-0.6, -0.8, 0.0),           # hips
    (0.0, 1.0, -0.1),                              # spine1
    (0.05, -1.0, 0.0), (-0.05, -1.0, 0.0),         # knees
    (0.0, 1.0, 0.1),                               # spine2
    (0.0, -1.0, -0.05), (0.0, -1.0, -0.05),        # ankles
    (0.0, 1.0, 0.0),                               # spine3
    (0.0, -0.45, 1.0), (0.0, -0.45, 1.0),          # feet (toe bases)
    (0.0, 1.0, -0.1),                              # neck
    (0.5, 0.86, 0.0), (-0.5, 0.86, 0.0),           # collars
    (0.0, 1.0, 0.25),                              # head
    (1.0, 0.2, 0.0), (-1.0, 0.2, 0.0),             # shoulders
    (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0),             # elbows
    (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0),             # wrists
    (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0),             # hands
)
_HAND_LENGTH = 0.08


def default_rest_joints(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(24, 3) rest joint positions of the built-in skeleton (see the comment above)."""
    dirs = torch.tensor(_REST_DIRECTIONS, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    lengths = torch.tensor(TARGET_BONE_LENGTHS + (_HAND_LENGTH, _HAND_LENGTH), dtype=torch.float64)
    joints = torch.zeros(N_SMPL_JOINTS, 3, dtype=torch.float64)
    for j in range(1, N_SMPL_JOINTS):
        joints[j] = joints[SMPL_PARENTS[j]] + dirs[j] * lengths[j]
    return joints.to(dtype)
