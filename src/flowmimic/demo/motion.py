"""Shared core of the procedural demo motions: specs, channels -> SMPL poses, feet on the floor.

Everything is built in the canonical frame (y-up metres, facing +z, the body's left on +x, SMPL
joint order) as SMPL axis-angle poses, so bone lengths are those of the rest skeleton by
construction. A motion is a set of named joint-angle channels over time (hip flexion, knee bend,
shoulder swing, heading, ...), each a (B, T) tensor for a batch of sequences; `_local_rotations`
turns the channels into per-joint local rotations.

Nothing here places the root directly. `plant_feet` runs forward kinematics with the pelvis at the
origin, then moves the root so that the lowest foot joint touches the floor (y = 0) and the
supporting foot does not slide: the root's horizontal velocity is minus the velocity of the foot
joints relative to the root, weighted by a soft-min over their heights (the lowest joint carries
the weight). Travel, turns about the stance foot and weight shifts all follow from the legs.

The motions themselves live in `demo.dances` (dances in the 10 AIST++ genres,
`synthesize_dances`) and `demo.studio` (calm MVHumanNet-like actions, `synthesize_studio`);
both fill channels and hand them to `_finish`. `smpl45_joints` adds SMPL's 21 extra keypoints
(MVHumanNet releases 45 joints).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from flowmimic.body.kinematics import smpl_forward_kinematics
from flowmimic.body.rotation import axis_angle_to_matrix, matrix_to_axis_angle
from flowmimic.body.skeleton import LEFT_FOOT, N_SMPL_JOINTS, RIGHT_FOOT, SMPL_PARENTS, TARGET_BONE_LENGTHS

DTYPE = torch.float32
FOOT_JOINTS: tuple[int, ...] = LEFT_FOOT + RIGHT_FOOT   # left ankle, left toe base, right ankle, right toe base
CONTACT_SOFTNESS_M = 0.01       # height scale of the soft-min that picks the supporting foot joint

# The neutral standing pose (shoulder "down" lowers the arms from the T-pose; pi/2 hangs them).
_ARM_REST_DOWN, _ARM_REST_ELBOW = 1.30, 0.25


# ----------------------------------------------------------------------------- specs and results


@dataclass(frozen=True)
class DanceSpec:
    """One dance sequence to synthesise."""

    genre: str          # AIST++ genre code, 'gBR' ...
    dancer_seed: int    # seeds the dancer's personal style (same dancer -> same style)
    advanced: bool      # sFM (advanced, more varied) or sBM (basic, two alternating moves)
    bpm: float
    seconds: float
    seed: int           # seeds everything specific to this sequence


@dataclass(frozen=True)
class StudioSpec:
    """One MVHumanNet-like studio sequence to synthesise."""

    performer_seed: int  # seeds body scale and personal pace
    seconds: float
    seed: int


@dataclass(frozen=True)
class MotionBatch:
    """Synthesised sequences, padded to a common length (frames past `lengths[b]` are padding).

    poses: (B, T, 24, 3) SMPL axis-angle in the canonical frame (joint 0 = global orientation).
    transl: (B, T, 3) SMPL translation: joints = FK(poses, rest, transl).
    joints: (B, T, 24, 3) canonical joints, metres, floor at y = 0.
    rest: (B, 24, 3) rest skeleton of each sequence.
    lengths: (B,) frames of each sequence.
    fps: frame rate.
    """

    poses: Tensor
    transl: Tensor
    joints: Tensor
    rest: Tensor
    lengths: Tensor
    fps: float

    def sequence(self, b: int) -> tuple[Tensor, Tensor, Tensor]:
        """(poses (T,24,3), transl (T,3), joints (T,24,3)) of sequence b without its padding."""
        n = int(self.lengths[b])
        return self.poses[b, :n], self.transl[b, :n], self.joints[b, :n]


# ----------------------------------------------------------------------------- small helpers


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the synthesis with one torch intra-op thread (restored afterwards)."""
    # The demo's tensors are small (~1e5 elements per op); intra-op threads only add
    # synchronisation, which on a busy 2-core machine was measured ~200x slower than one thread.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _uniform(g: torch.Generator, lo: float, hi: float, *shape: int) -> Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=DTYPE)


def _lognormal(g: torch.Generator, sigma: float, *shape: int) -> Tensor:
    return torch.exp(sigma * torch.randn(shape, generator=g, dtype=DTYPE))


def _smoothstep(x: Tensor) -> Tensor:
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _stack_plans(plans: list[dict[str, Tensor]], fill: dict[str, float]) -> dict[str, Tensor]:
    """Stack per-sequence plans: scalars to (B,), per-bar/segment rows (S_i, ...) to (B, max S, ...).

    Rows are padded with `fill[key]`, or by repeating their last row for keys not in `fill`.
    """
    out = {}
    for key in plans[0]:
        rows = [pl[key] for pl in plans]
        if rows[0].dim() == 0:
            out[key] = torch.stack(rows)
            continue
        s = max(r.shape[0] for r in rows)
        padded = []
        for r in rows:
            pad = (r.new_full((s - r.shape[0], *r.shape[1:]), fill[key]) if key in fill
                   else r[-1:].expand(s - r.shape[0], *r.shape[1:]))
            padded.append(torch.cat([r, pad]))
        out[key] = torch.stack(padded)
    return out


def _axis_rot(angle: Tensor, axis: int) -> Tensor:
    """(...,) angles -> (..., 3, 3) rotations about the x (0), y (1) or z (2) axis (a one-hot axis-angle)."""
    aa = torch.zeros(*angle.shape, 3, dtype=angle.dtype)
    aa[..., axis] = angle
    return axis_angle_to_matrix(aa)


def _rx(a: Tensor) -> Tensor:
    return _axis_rot(a, 0)


def _ry(a: Tensor) -> Tensor:
    return _axis_rot(a, 1)


def _rz(a: Tensor) -> Tensor:
    return _axis_rot(a, 2)


# ----------------------------------------------------------------------------- channels -> pose

# Channel names (each a (B, T) tensor). Per side: _l / _r. Signs are anatomical, mirrored for the
# right side by `_local_rotations`, except `lat` (toward the body's left, +x, for both legs).
CHANNELS: tuple[str, ...] = (
    "heading",                                   # yaw of the whole body about +y
    "lean", "side", "twist",                     # spine: forward lean, side bend to the left, twist to the left
    "nod", "look",                               # head: nod down, turn to the left
    "shrug",                                     # both collars up
    "flex_l", "flex_r", "abd_l", "abd_r",        # hips: thigh forward, thigh outward
    "knee_l", "knee_r", "point_l", "point_r",    # knee bend; toes pointed beyond a flat foot
    "down_l", "down_r", "swing_l", "swing_r",    # shoulder: lower from the T-pose; swing forward (sagittal)
    "open_l", "open_r", "tw_l", "tw_r",          # shoulder: open a forward arm outward; twist about the arm
    "elbow_l", "elbow_r", "wrist_l", "wrist_r",
)


def _neutral_channels(shape: tuple[int, int]) -> dict[str, Tensor]:
    ch = {name: torch.zeros(shape, dtype=DTYPE) for name in CHANNELS}
    for s in ("l", "r"):
        ch[f"down_{s}"] += _ARM_REST_DOWN
        ch[f"elbow_{s}"] += _ARM_REST_ELBOW
        ch[f"swing_{s}"] += 0.05
        ch[f"abd_{s}"] += 0.04
    return ch


def _local_rotations(ch: dict[str, Tensor]) -> Tensor:
    """Channels (each (B, T)) -> local joint rotations (B, T, 24, 3, 3), canonical rest frames.

    Axes (rest frames are aligned with the canonical frame): a thigh swings forward under a negative
    x rotation, a knee bends under a positive one; a left arm (along +x) lowers under a negative z
    rotation. The right side mirrors the left through the x = 0 plane (axis-angle (x, y, z) ->
    (x, -y, -z)), so its y and z rotations change sign.
    """
    b, t = ch["heading"].shape
    eye = torch.eye(3, dtype=DTYPE).expand(b, t, N_SMPL_JOINTS, 3, 3).clone()
    rot = list(eye.unbind(dim=2))
    rot[0] = _ry(ch["heading"])
    for side, sign, hip, knee, ankle in (("l", 1.0, 1, 4, 7), ("r", -1.0, 2, 5, 8)):
        flex, k = ch[f"flex_{side}"], ch[f"knee_{side}"]
        abd = ch[f"abd_{side}"]
        rot[hip] = _rz(sign * abd) @ _rx(-flex)
        rot[knee] = _rx(k)
        # A flat foot needs the ankle to undo the shin's pitch (thigh pitch minus knee bend).
        rot[ankle] = _rx(flex - k + ch[f"point_{side}"])
    for joint, share in ((3, 0.4), (6, 0.3), (9, 0.3)):
        rot[joint] = _rx(share * ch["lean"]) @ _rz(-share * ch["side"]) @ _ry(share * ch["twist"])
    # The neck and head keep the gaze level against the spine's lean, then nod and turn.
    for joint in (12, 15):
        rot[joint] = _rx(0.5 * (ch["nod"] - 0.6 * ch["lean"])) @ _ry(0.5 * ch["look"])
    rot[13], rot[14] = _rz(ch["shrug"]), _rz(-ch["shrug"])
    for side, sign, shoulder, elbow, wrist in (("l", 1.0, 16, 18, 20), ("r", -1.0, 17, 19, 21)):
        rot[shoulder] = (_ry(sign * ch[f"open_{side}"]) @ _rx(-ch[f"swing_{side}"])
                         @ _rz(-sign * ch[f"down_{side}"]) @ _rx(ch[f"tw_{side}"]))
        rot[elbow] = _ry(-sign * ch[f"elbow_{side}"])
        rot[wrist] = _rz(-sign * ch[f"wrist_{side}"])
    return torch.stack(rot, dim=2)


# ----------------------------------------------------------------------------- feet on the floor


def plant_feet(rel_joints: Tensor, start_xz: Tensor) -> Tensor:
    """Root positions that keep the lowest foot joint on the floor and the supporting foot still.

    Args:
        rel_joints: (B, T, J, 3) joints with the pelvis at the origin (orientation included).
        start_xz: (B, 2) horizontal root position at frame 0.
    Returns:
        (B, T, 3) pelvis positions; `rel_joints + root[..., None, :]` stands on y = 0.
    """
    feet = rel_joints[..., FOOT_JOINTS, :]                                   # (B, T, 4, 3)
    heights = feet[..., 1]
    weight = torch.softmax(-heights / CONTACT_SOFTNESS_M, dim=-1)           # who carries the body
    step = feet[:, 1:, :, ::2] - feet[:, :-1, :, ::2]                        # (B, T-1, 4, 2) xz
    w_mid = 0.5 * (weight[:, 1:] + weight[:, :-1])
    root_step = -(w_mid[..., None] * step).sum(dim=-2)                       # (B, T-1, 2)
    xz = torch.cat([start_xz[:, None], start_xz[:, None] + torch.cumsum(root_step, dim=1)], dim=1)
    y = -heights.min(dim=-1).values
    return torch.stack([xz[..., 0], y, xz[..., 1]], dim=-1)


def _finish(ch: dict[str, Tensor], rest: Tensor, start_xz: Tensor, lengths: Tensor, fps: float) -> MotionBatch:
    """Channels -> poses, planted root, joints."""
    poses = matrix_to_axis_angle(_local_rotations(ch))                      # (B, T, 24, 3)
    rest_b = rest[:, None]                                                   # (B, 1, 24, 3)
    rel = smpl_forward_kinematics(poses, rest_b, -rest_b[..., 0, :])       # pelvis at the origin
    root = plant_feet(rel, start_xz)
    joints = rel + root[..., None, :]
    transl = root - rest[:, None, 0, :]
    return MotionBatch(poses=poses, transl=transl, joints=joints, rest=rest, lengths=lengths, fps=fps)


# ----------------------------------------------------------------------------- 45 SMPL joints

# SMPL's 21 extra keypoints (after its 24 joints, in smplx's order: face, feet, fingertips), each
# as (parent joint, offset from it in the rest frame, metres for the built-in 1.7 m skeleton).
# Approximate positions chosen for the demo: nose/eyes/ears around the head joint, toes and heels
# around the foot and ankle joints, fingertips past the hand joints.
EXTRA_KEYPOINTS: tuple[tuple[str, int, tuple[float, float, float]], ...] = (
    ("nose", 15, (0.0, 0.02, 0.10)),
    ("right_eye", 15, (-0.032, 0.06, 0.085)), ("left_eye", 15, (0.032, 0.06, 0.085)),
    ("right_ear", 15, (-0.075, 0.03, -0.01)), ("left_ear", 15, (0.075, 0.03, -0.01)),
    ("left_big_toe", 10, (-0.025, -0.005, 0.055)), ("left_small_toe", 10, (0.035, -0.005, 0.04)),
    ("left_heel", 7, (0.005, -0.06, -0.06)),
    ("right_big_toe", 11, (0.025, -0.005, 0.055)), ("right_small_toe", 11, (-0.035, -0.005, 0.04)),
    ("right_heel", 8, (-0.005, -0.06, -0.06)),
    ("left_thumb", 22, (0.05, -0.01, 0.05)), ("left_index", 22, (0.10, 0.0, 0.03)),
    ("left_middle", 22, (0.11, 0.0, 0.01)), ("left_ring", 22, (0.10, 0.0, -0.01)),
    ("left_pinky", 22, (0.085, 0.0, -0.03)),
    ("right_thumb", 23, (-0.05, -0.01, 0.05)), ("right_index", 23, (-0.10, 0.0, 0.03)),
    ("right_middle", 23, (-0.11, 0.0, 0.01)), ("right_ring", 23, (-0.10, 0.0, -0.01)),
    ("right_pinky", 23, (-0.085, 0.0, -0.03)),
)
N_SMPL45 = N_SMPL_JOINTS + len(EXTRA_KEYPOINTS)
# Thigh + shin of the built-in skeleton: the bones ending at joints 4 (left knee) and 7 (left ankle).
_BUILTIN_LEG_M = TARGET_BONE_LENGTHS[4] + TARGET_BONE_LENGTHS[7]


def smpl45_joints(poses: Tensor, rest: Tensor, transl: Tensor) -> Tensor:
    """SMPL's 45 joints (24 + 21 extra keypoints, see `EXTRA_KEYPOINTS`) by forward kinematics.

    Args:
        poses: (..., 24, 3) axis-angle; rest: (24, 3) or (..., 24, 3); transl: (..., 3).
    Returns:
        (..., 45, 3); the first 24 equal `smpl_forward_kinematics(poses, rest, transl)`.
    """
    rest = rest.to(poses.dtype)
    leg = (rest[..., 4, :] - rest[..., 1, :]).norm(dim=-1) + (rest[..., 7, :] - rest[..., 4, :]).norm(dim=-1)
    scale = (leg / _BUILTIN_LEG_M)[..., None, None]
    parents = SMPL_PARENTS + tuple(p for _, p, _ in EXTRA_KEYPOINTS)
    offsets = torch.tensor([o for _, _, o in EXTRA_KEYPOINTS], dtype=poses.dtype) * scale
    extra_rest = rest[..., [p for _, p, _ in EXTRA_KEYPOINTS], :] + offsets
    rest45 = torch.cat([rest.expand(*extra_rest.shape[:-2], N_SMPL_JOINTS, 3), extra_rest], dim=-2)
    poses45 = torch.cat([poses, poses.new_zeros(*poses.shape[:-2], len(EXTRA_KEYPOINTS), 3)], dim=-2)
    return smpl_forward_kinematics(poses45, rest45, transl, parents=parents)


__all__ = [
    "CHANNELS", "DanceSpec", "EXTRA_KEYPOINTS", "FOOT_JOINTS", "MotionBatch", "N_SMPL45", "StudioSpec",
    "plant_feet", "single_thread", "smpl45_joints",
]
