"""How faithfully an exported motion reads back: write it, read it with a reader, compare the joints.

The export tests and `benchmarks/bench_export.py` measure the same things through these functions:

- `bvh_round_trip`: `bvh.write_bvh`, then the file parsed and posed by bvhio, a BVH reader
  independent of our writer (its own parser and forward kinematics). bvhio is an optional
  dependency (`pip install flowmimic[test]`), imported only here.
- `aist_pkl_round_trip`: `smpl.write_aist_pkl`, then read back by FlowMimic's AIST++ reader
  (`sources.aist.read_sequence`, which resamples 60 fps to `data.fps` and centres frame 0's pelvis
  on the origin: the input is compared centred the same way).

Both return the joint position error over all joints and frames (`JointError`, metres).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from flowmimic.body.skeleton import JOINT_NAMES, N_JOINTS
from flowmimic.export.bvh import DEFAULT_ORDER, UNIT_SCALE, Units, write_bvh
from flowmimic.export.ik import Skeleton, check_joints
from flowmimic.export.smpl import write_aist_pkl
from flowmimic.params import DataParams


class JointError(NamedTuple):
    """Joint position error (m) of a motion read back, over all joints and frames."""

    mean_m: float
    max_m: float


def joint_error(got: Tensor | np.ndarray, want: Tensor | np.ndarray) -> JointError:
    """Mean and max Euclidean distance between two (T, 22, 3) joint sequences of the same shape."""
    a, b = check_joints(got), check_joints(want)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare joints of shapes {tuple(a.shape)} and {tuple(b.shape)}")
    err = (a - b).norm(dim=-1)
    return JointError(mean_m=float(err.mean()), max_m=float(err.max()))


def read_bvh_joints(path: str | Path, units: Units = "m") -> tuple[np.ndarray, float]:
    """A BVH file of SMPL's 22 named joints as bvhio poses it: (T, 22, 3) world positions in metres
    (the file's lengths divided by `units`' scale) and the file's frame time (s).

    Raises:
        ValueError: the file's joints are not SMPL's 22 (by name).
    """
    import bvhio

    container = bvhio.readAsBvh(str(path))
    root = bvhio.readAsHierarchy(str(path))
    by_name = {joint.Name: joint for joint, _, _ in root.layout()}
    if sorted(by_name) != sorted(JOINT_NAMES):
        raise ValueError(f"{path}: expected SMPL's {N_JOINTS} joints, got {sorted(by_name)}")
    joints = [by_name[name] for name in JOINT_NAMES]
    out = np.zeros((container.FrameCount, N_JOINTS, 3))
    for frame in range(container.FrameCount):
        root.loadPose(frame)
        out[frame] = [np.asarray(j.PositionWorld) for j in joints]
    return out / UNIT_SCALE[units], float(container.FrameTime)


def bvh_round_trip(path: str | Path, joints: Tensor | np.ndarray, fps: float, *, skeleton: Skeleton = "median",
                   units: Units = "m", order: str = DEFAULT_ORDER) -> JointError:
    """Write `joints` to the BVH file `path` (`write_bvh`, same options), read it back with bvhio and
    return the error against `joints` (m). ValueError if the frame count or frame time changed."""
    write_bvh(path, joints, fps, skeleton=skeleton, units=units, order=order)
    back, frame_time = read_bvh_joints(path, units)
    if not np.isclose(frame_time, 1.0 / fps, rtol=1e-6):
        raise ValueError(f"{path}: frame time {frame_time} read back, {1.0 / fps} written")
    return joint_error(back, joints)


def aist_pkl_round_trip(path: str | Path, joints: Tensor | np.ndarray, data: DataParams,
                        rest_joints: Tensor | None = None) -> JointError:
    """Write `joints` (at `data.fps`) as the AIST++ motion `path` (`write_aist_pkl`; name it like an
    AIST++ motion, e.g. `gBR_sBM_cAll_d01_mBR0_ch01.pkl`), read it back with our AIST++ reader on the
    skeleton it was posed on (default: as the pipeline reads AIST++) and return the error against `joints` (m), both centred on frame 0's pelvis."""
    from flowmimic.sources import aist, aist_reader_args

    j = check_joints(joints)
    write_aist_pkl(path, j, float(data.fps), data, rest_joints)
    reader = aist_reader_args(data) if rest_joints is None else {"rest_joints": rest_joints}
    back = aist.read_sequence(path, data, **reader).joints
    return joint_error(back, j - j[:1, :1])


__all__ = ["JointError", "aist_pkl_round_trip", "bvh_round_trip", "joint_error", "read_bvh_joints"]
