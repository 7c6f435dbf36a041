"""Joint sequences -> BVH files (Biovision Hierarchy), the motion format animation tools open.

The file holds SMPL's 22-joint hierarchy with SMPL's joint names, on one fixed rest skeleton
(`ik.skeleton_offsets`: a T-pose, y-up, facing +z, with the motion's median bone lengths or
HumanML3D's target ones), posed by `ik.joints_to_local_rotations`. The root (pelvis) has six
channels, position then rotation; every other joint three rotation channels. Rotations are
Euler angles in degrees in the order the CHANNELS lines name (default Z, X, Y: R = Rz Rx Ry, as
most BVH readers expect); `Frame Time` is 1 / fps. Lengths are metres or centimetres (`units`).

The BVH format has no comment syntax, and readers reject the `#` lines some writers add (bvhio
does), so the file carries no header comment: units, axes and rotation order are stated in the
README and in `write_bvh`'s log line. The writer is our own (a few lines of text): the BVH reader
the tests check it with (bvhio) is then independent of it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from flowmimic.body.rotation import matrix_to_euler
from flowmimic.body.skeleton import JOINT_NAMES, N_JOINTS
from flowmimic.export.ik import (
    CHILDREN, Skeleton, check_joints, joints_to_local_rotations, skeleton_offsets,
)
from flowmimic.io import write_text

log = logging.getLogger(__name__)

Units = Literal["m", "cm"]
UNIT_SCALE: dict[str, float] = {"m": 1.0, "cm": 100.0}
DEFAULT_ORDER = "ZXY"
# End Site of each leaf: how far past the joint the bone's tip sits, along the leaf's own bone
# (metres; SMPL's hand joints are 8 cm past the wrists, toe tips ~5 cm past the toe bases).
_END_SITE_M = {10: 0.05, 11: 0.05, 15: 0.10, 20: 0.08, 21: 0.08}
_DIGITS = 6


def _fmt(values: np.ndarray) -> str:
    texts = (f"{v:.{_DIGITS}f}" for v in values.tolist())
    return " ".join(t[1:] if t.startswith("-") and float(t) == 0 else t for t in texts)


def bvh_text(joints: Tensor | np.ndarray, fps: float, *, skeleton: Skeleton = "median",
             units: Units = "m", order: str = DEFAULT_ORDER) -> str:
    """The BVH file of a joint sequence (see the module docstring).

    Args:
        joints: (T, 22, 3) metres, y-up, SMPL order.
        fps: frame rate (Frame Time = 1 / fps).
        skeleton: "median" (the motion's median bone lengths) or "target" (HumanML3D's).
        units: "m" or "cm" for offsets and root positions.
        order: Euler order of the rotation channels, a permutation of "XYZ".
    Raises:
        ValueError: bad shape, NaN/Inf, fps <= 0, unknown units/skeleton/order.
    """
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if units not in UNIT_SCALE:
        raise ValueError(f"units must be one of {tuple(UNIT_SCALE)}, got {units!r}")
    order = order.upper()
    j = check_joints(joints)
    offsets = skeleton_offsets(j, skeleton)
    local, root = joints_to_local_rotations(j, offsets)
    scale = UNIT_SCALE[units]
    # Angles stay in (-180, 180]: unwrapping them over time (for smoother curves) gave files that
    # bvhio's forward kinematics misreads past +-180 degrees.
    euler = torch.rad2deg(matrix_to_euler(local, order))                    # (T, 22, 3)
    rot_channels = " ".join(f"{axis}rotation" for axis in order)

    lines = ["HIERARCHY"]

    def node(joint: int, depth: int) -> None:
        pad = "  " * depth
        offset = np.zeros(3) if joint == 0 else offsets[joint].numpy() * scale
        lines.append(f"{pad}{'ROOT' if joint == 0 else 'JOINT'} {JOINT_NAMES[joint]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {_fmt(offset)}")
        if joint == 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {rot_channels}")
        else:
            lines.append(f"{pad}  CHANNELS 3 {rot_channels}")
        for child in CHILDREN[joint]:
            node(child, depth + 1)
        if not CHILDREN[joint]:
            tip = offsets[joint] / offsets[joint].norm().clamp_min(1e-12) * _END_SITE_M[joint] * scale
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {_fmt(tip.numpy())}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    node(0, 0)
    # Channel data in the order the hierarchy lists the joints (depth first).
    visit: list[int] = []
    stack = [0]
    while stack:
        joint = stack.pop()
        visit.append(joint)
        stack.extend(reversed(CHILDREN[joint]))
    assert sorted(visit) == list(range(N_JOINTS))
    frames = torch.cat((root * scale, euler[:, visit].flatten(1)), dim=1).numpy()
    lines += ["MOTION", f"Frames: {j.shape[0]}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [_fmt(row) for row in frames]
    return "\n".join(lines) + "\n"


def write_bvh(path: str | Path, joints: Tensor | np.ndarray, fps: float, *, skeleton: Skeleton = "median",
              units: Units = "m", order: str = DEFAULT_ORDER) -> Path:
    """Write `bvh_text(joints, fps, ...)` to `path` atomically (nothing is left on failure)."""
    text = bvh_text(joints, fps, skeleton=skeleton, units=units, order=order)
    path = Path(path)
    write_text(path, text)
    log.info("wrote %s: %d frames at %g fps, SMPL-22 hierarchy, %s skeleton, units %s, y-up, "
             "Euler %s in degrees", path, len(joints), fps, skeleton, units, order.upper())
    return path


__all__ = ["DEFAULT_ORDER", "UNIT_SCALE", "Units", "bvh_text", "write_bvh"]
