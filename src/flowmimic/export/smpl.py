"""Joint sequences -> SMPL poses in AIST++'s motion format (`.pkl`), for tools that drive an SMPL mesh.

AIST++ stores each motion as a pickle of `smpl_poses` (N, 72) axis-angle (joint 0 the global
orientation), `smpl_trans` (N, 3), `smpl_scaling` (1,) and `smpl_loss`, at 60 fps, in its own
native axes (https://google.github.io/aistplusplus_dataset/). The export:

1. turns the y-up joints back into AIST++'s native axes, inverting the alignment our reader applies
   (`data.zup_to_yup @ data.aist.axis_remap`, from params), so reading the file back with
   `flowmimic.sources.aist` gives the input again;
2. solves SMPL's 22 body rotations with the exporters' IK (`ik.joints_to_local_rotations`) on
   SMPL's rest skeleton: the model file's template joints when `data.smpl_model_dir` is set, else
   the built-in rest skeleton, i.e. what the reader poses; the two hand joints stay at rest;
3. resamples to `data.aist.fps` (60): rotations by spherical linear interpolation (scipy's
   `Slerp`), the root translation linearly. Output frame k * (60 / fps) is input frame k exactly;
4. writes `smpl_trans` in metres with `smpl_scaling` [1.0] and `smpl_loss` 0.

The joints are reproduced exactly (to rounding) when the motion's bones have the rest skeleton's
lengths and its pelvis and chest its shape; otherwise the IK keeps every bone's direction and the
positions drift by the difference (what `ik.bone_fix_error` measures for a fixed skeleton).
"""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from flowmimic.body.rotation import matrix_to_axis_angle
from flowmimic.body.skeleton import N_JOINTS, N_SMPL_JOINTS, PARENTS
from flowmimic.export.ik import check_joints, joints_to_local_rotations
from flowmimic.io import write_bytes
from flowmimic.params import DataParams
from flowmimic.sources.common import canonical_rotation

log = logging.getLogger(__name__)


def _resample(local: Tensor, root: Tensor, fps: float, out_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, J, 3, 3) rotations and (T, 3) root at `fps` -> the same at `out_fps`, over the same span."""
    from scipy.spatial.transform import Rotation, Slerp

    n_in = local.shape[0]
    if n_in == 1 or math.isclose(fps, out_fps):
        return local.numpy(), root.numpy()
    t_in = np.arange(n_in) / fps
    n_out = int(math.floor((n_in - 1) * out_fps / fps + 1e-9)) + 1
    t_out = np.minimum(np.arange(n_out) / out_fps, t_in[-1])
    rots = np.stack([Slerp(t_in, Rotation.from_matrix(local[:, k].numpy()))(t_out).as_matrix()
                     for k in range(local.shape[1])], axis=1)
    trans = np.stack([np.interp(t_out, t_in, root[:, d].numpy()) for d in range(3)], axis=-1)
    return rots, trans


def joints_to_aist_motion(joints: Tensor | np.ndarray, fps: float, data: DataParams,
                          rest_joints: Tensor | None = None) -> dict[str, np.ndarray | float]:
    """The AIST++ motion dict of a joint sequence (see the module docstring).

    Args:
        joints: (T, 22, 3) metres, y-up (FlowMimic's canonical frame), SMPL order.
        fps: their frame rate.
        data: params' data section: AIST++'s axes (`aist.axis_remap`, `zup_to_yup`), frame rate
            (`aist.fps`) and SMPL model (`smpl_model_dir`, `aist.gender`).
        rest_joints: (24, 3) SMPL rest joints to pose; default: what the AIST++ reader poses.
    Returns:
        {"smpl_poses": (N, 72) float64, "smpl_trans": (N, 3) float64 metres,
         "smpl_scaling": (1,) [1.0], "smpl_loss": 0.0}, N = floor((T - 1) * 60 / fps) + 1.
    """
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    j = check_joints(joints)
    if rest_joints is None:
        from flowmimic.body.smpl_model import rest_joints_for

        rest_joints = rest_joints_for(data.smpl_model_dir, data.aist.gender, dtype=torch.float64)
    rest = rest_joints.to(torch.float64)
    if tuple(rest.shape) != (N_SMPL_JOINTS, 3):
        raise ValueError(f"rest_joints must have shape ({N_SMPL_JOINTS}, 3), got {tuple(rest.shape)}")
    # y-up = native @ A.T (the reader's `align`), so native = y-up @ A.
    native = j @ canonical_rotation(data.zup_to_yup, data.aist.axis_remap)
    offsets = torch.zeros(N_JOINTS, 3, dtype=torch.float64)
    offsets[1:] = rest[1:N_JOINTS] - rest[list(PARENTS[1:])]
    local, root = joints_to_local_rotations(native, offsets)
    rots, pelvis = _resample(local, root, float(fps), float(data.aist.fps))
    poses = np.zeros((rots.shape[0], N_SMPL_JOINTS, 3))
    poses[:, :N_JOINTS] = matrix_to_axis_angle(torch.from_numpy(rots)).numpy()
    return {
        "smpl_poses": poses.reshape(-1, N_SMPL_JOINTS * 3),
        "smpl_trans": pelvis - rest[0].numpy(),            # joint 0 = rest pelvis + trans
        "smpl_scaling": np.array([1.0]),
        "smpl_loss": 0.0,
    }


def write_aist_pkl(path: str | Path, joints: Tensor | np.ndarray, fps: float, data: DataParams,
                   rest_joints: Tensor | None = None) -> Path:
    """Write `joints_to_aist_motion(...)` as an AIST++ motion pickle at `path`, atomically.

    Plain dict of numpy arrays (protocol 4): AIST++'s own loader, `pickle.load` and FlowMimic's
    restricted unpickler all read it. Name it like an AIST++ motion (e.g.
    `gBR_sBM_cAll_d04_mBR0_ch01.pkl`) for readers that parse the genre from the name.
    """
    motion = joints_to_aist_motion(joints, fps, data, rest_joints)
    path = Path(path)
    write_bytes(path, pickle.dumps(motion, protocol=4))
    log.info("wrote %s: %d SMPL frames at %g fps (AIST++ axes, smpl_scaling 1, translation in metres)",
             path, motion["smpl_poses"].shape[0], data.aist.fps)
    return path


__all__ = ["joints_to_aist_motion", "write_aist_pkl"]
