"""AIST++ reader: `<aist_root>/motions/*.pkl` (SMPL fits at 60 fps) -> aligned SMPL-22 joints.

Native layout (AIST++ annotations, https://google.github.io/aistplusplus_dataset/)::

    <aist_root>/motions/gBR_sBM_cAll_d04_mBR0_ch01.pkl   smpl_poses (N,72), smpl_trans (N,3),
                                                         smpl_scaling (1,), smpl_loss
    <aist_root>/splits/pose_{train,val,test}.txt
    <aist_root>/ignore_list.txt                          badly fitted sequences

Joints are the SMPL forward pass with translation `smpl_trans / smpl_scaling` (metres): the fits
live in a scaled (roughly centimetre) world, and stock smplx silently ignores a `scaling=` argument,
so the division is done here (the seed's "translation scaling fix"). Betas are zero; the fits used
the MALE model, used when `data.smpl_model_dir` is set, else the built-in rest skeleton.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from flowmimic.body.kinematics import smpl_forward_kinematics
from flowmimic.body.skeleton import N_JOINTS
from flowmimic.errors import DataError
from flowmimic.io import read_lines, safe_load_pickle
from flowmimic.params import DataParams
from flowmimic.sources.common import (RawSequence, align, canonical_rotation, check_finite, frame_step,
                                      numeric_array, resample)
from flowmimic.taxonomy import genre_id

_NAME = re.compile(r"^g(?P<genre>[A-Z]{2})_s(?P<situation>[A-Z]{2})_c(?P<camera>[A-Za-z0-9]+)_"
                   r"d(?P<dancer>\d+)_m(?P<music>[A-Z]{2}\d+)_ch(?P<choreo>\d+)$")


@dataclass(frozen=True)
class AistName:
    """The parts of an AIST++ sequence name, e.g. gBR_sBM_cAll_d04_mBR0_ch01."""

    genre: str          # "gBR"
    situation: str      # "sBM" basic dance / "sFM" advanced (freestyle) dance
    camera: str         # "cAll"
    dancer: str         # "d04"
    music: str          # "mBR0"
    choreography: str   # "ch01"

    @property
    def genre_id(self) -> int:
        return genre_id(self.genre)


def parse_name(name: str) -> AistName:
    m = _NAME.match(name)
    if m is None:
        raise ValueError(f"not an AIST++ sequence name (expected e.g. gBR_sBM_cAll_d04_mBR0_ch01): {name!r}")
    return AistName(genre=f"g{m['genre']}", situation=f"s{m['situation']}", camera=f"c{m['camera']}",
                    dancer=f"d{m['dancer']}", music=f"m{m['music']}", choreography=f"ch{m['choreo']}")


def motion_path(aist_root: str | Path, name: str) -> Path:
    return Path(aist_root) / "motions" / f"{name}.pkl"


def read_split(aist_root: str | Path, split: str) -> list[str]:
    """Names in `splits/pose_<split>.txt` (stripped, in file order)."""
    return read_lines(Path(aist_root) / "splits" / f"pose_{split}.txt")


def read_ignore_list(aist_root: str | Path) -> set[str]:
    """Names in `ignore_list.txt`; a missing list is an error (an empty set would silently keep bad fits)."""
    path = Path(aist_root) / "ignore_list.txt"
    if not path.is_file():
        raise DataError(path, "AIST++ ignore list not found: restore it from the annotations, or set "
                        "data.aist.use_ignore_list: false to use none", "missing")
    return set(read_lines(path))


def load_motion(path: str | Path) -> dict[str, np.ndarray]:
    """Read and check one motion pickle; returns poses (N,24,3), trans (N,3), scaling () as float64."""
    raw = safe_load_pickle(path)
    if not isinstance(raw, dict):
        raise DataError(path, f"expected a dict of arrays, got {type(raw).__name__}", "invalid")
    for key in ("smpl_poses", "smpl_trans", "smpl_scaling"):
        if key not in raw:
            raise DataError(path, f"missing key '{key}' (has: {sorted(map(str, raw))})", "missing_key")
    poses = numeric_array(raw["smpl_poses"], path, "smpl_poses")
    trans = numeric_array(raw["smpl_trans"], path, "smpl_trans")
    scaling = numeric_array(raw["smpl_scaling"], path, "smpl_scaling").reshape(-1)
    if poses.ndim == 2 and poses.shape[1] == 72:
        poses = poses.reshape(-1, 24, 3)
    if poses.ndim != 3 or poses.shape[1:] != (24, 3):
        raise DataError(path, f"smpl_poses must be (N,72) or (N,24,3), got {poses.shape}", "bad_shape")
    if poses.shape[0] == 0:
        raise DataError(path, "the motion has 0 frames", "empty")
    if trans.shape != (poses.shape[0], 3):
        raise DataError(path, f"smpl_trans must be ({poses.shape[0]},3) to match smpl_poses, got {trans.shape}",
                        "bad_shape")
    if scaling.shape != (1,):
        raise DataError(path, f"smpl_scaling must hold one value, got shape {scaling.shape}", "bad_shape")
    for key, arr in (("smpl_poses", poses), ("smpl_trans", trans), ("smpl_scaling", scaling)):
        if not np.isfinite(arr).all():
            bad = np.flatnonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1))
            raise DataError(path, f"{key} has NaN/Inf at frames {bad[:5].tolist()}", "nan")
    if scaling[0] <= 0:
        raise DataError(path, f"smpl_scaling must be positive, got {scaling[0]}", "invalid")
    return {"poses": poses, "trans": trans, "scaling": scaling[0]}


def native_joints(motion: dict[str, np.ndarray], rest_joints: torch.Tensor) -> torch.Tensor:
    """(N, 24, 3) joints in AIST++'s native frame (metres), from `load_motion`'s output."""
    poses = torch.from_numpy(motion["poses"])
    transl = torch.from_numpy(motion["trans"] / motion["scaling"])
    return smpl_forward_kinematics(poses, rest_joints.to(torch.float64), transl)


def read_sequence(path: str | Path, data: DataParams, rest_joints: torch.Tensor,
                  joints_fn=None) -> RawSequence:
    """One AIST++ motion file -> `RawSequence` at `data.fps`, aligned to the y-up frame.

    `rest_joints` (24, 3) is the skeleton to pose (`flowmimic.body.smpl_model.rest_joints_for`);
    `joints_fn(poses (N,24,3), transl (N,3)) -> (N,24,3)` replaces it (e.g. the smplx forward pass).
    """
    path = Path(path)
    try:
        name = parse_name(path.stem)
    except ValueError as e:
        raise DataError(path, str(e), "bad_name") from None
    motion = load_motion(path)
    step = frame_step(data.aist.fps, data.fps)
    if step is not None:
        # Resampling keeps every k-th frame (`resample`), and posing is per frame: pose only those
        # (a third of the forward kinematics at 60 -> 20 fps, the same joints).
        motion = {**motion, "poses": motion["poses"][::step], "trans": motion["trans"][::step]}
    if joints_fn is None:
        joints = native_joints(motion, rest_joints)
    else:
        joints = joints_fn(torch.from_numpy(motion["poses"]), torch.from_numpy(motion["trans"] / motion["scaling"]))
    joints = joints[:, :N_JOINTS].to(torch.float64)
    check_finite(joints, path)
    joints = align(joints, canonical_rotation(data.zup_to_yup, data.aist.axis_remap))
    if step is None:
        times = torch.arange(joints.shape[0], dtype=torch.float64) / data.aist.fps
        joints = resample(joints, times, data.fps, src_fps=data.aist.fps)
    return RawSequence(id=path.stem, domain="aist", genre_id=name.genre_id, performer=name.dancer,
                       joints=joints.to(torch.float32), fps=float(data.fps), source=str(path))
