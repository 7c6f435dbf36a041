"""Small native-format AIST++ / MVHumanNet files for reader tests (written by the tests themselves)."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import torch

from flowmimic.body.kinematics import smpl_forward_kinematics
from flowmimic.body.rotation import axis_angle_to_matrix, matrix_to_axis_angle
from flowmimic.body.skeleton import default_rest_joints
from flowmimic.params import load_params, read_yaml
from flowmimic.sources.common import canonical_rotation

REPO = Path(__file__).resolve().parents[1]


def repo_params():
    return load_params(REPO / "params.yaml")


def walking_pose(n: int, fps: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical (y-up, facing +z) SMPL axis-angle poses (n, 24, 3) and pelvis positions (n, 3)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n, dtype=torch.float64) / fps
    poses = torch.zeros(n, 24, 3, dtype=torch.float64)
    swing = 0.4 * torch.sin(2 * math.pi * 1.0 * t)
    poses[:, 1, 0], poses[:, 2, 0] = swing, -swing                      # hips flex/extend
    poses[:, 4, 0], poses[:, 5, 0] = 0.3 * (1 + torch.sin(2 * math.pi * t)), 0.3 * (1 - torch.sin(2 * math.pi * t))
    poses[:, 16, 2], poses[:, 17, 2] = -1.2, 1.2                        # arms down
    poses[:, 0, 1] = 0.3 * torch.sin(0.5 * t) + 0.1 * torch.rand(1, generator=g, dtype=torch.float64)
    pelvis = torch.stack((0.2 * torch.sin(0.3 * t), 0.93 + 0.02 * torch.sin(4 * math.pi * t), 0.8 * t), dim=-1)
    return poses, pelvis


def canonical_joints(poses: torch.Tensor, pelvis: torch.Tensor) -> torch.Tensor:
    rest = default_rest_joints(torch.float64)
    return smpl_forward_kinematics(poses, rest, pelvis - rest[0])


def to_native(poses: torch.Tensor, pelvis: torch.Tensor, rotation: torch.Tensor):
    """Canonical poses/pelvis -> the native frame whose canonical rotation is `rotation`."""
    r_t = rotation.T.to(poses.dtype)
    root = r_t @ axis_angle_to_matrix(poses[:, 0])
    native = poses.clone()
    native[:, 0] = matrix_to_axis_angle(root)
    return native, pelvis @ rotation.to(pelvis.dtype)           # row vectors: x_native = R^T x


def write_aist_motion(path: Path, poses: np.ndarray, trans: np.ndarray, scaling: float = 94.0, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"smpl_poses": np.asarray(poses, np.float32).reshape(len(poses), -1),
            "smpl_trans": np.asarray(trans, np.float32), "smpl_scaling": np.array([scaling], np.float32),
            "smpl_loss": 1.5}
    data.update(extra)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


def make_aist_sequence(root: Path, name: str, seconds: float = 3.0, seed: int = 0, params=None) -> torch.Tensor:
    """Write motions/<name>.pkl in AIST++'s native frame; returns the canonical joints at 60 fps."""
    params = params or repo_params()
    fps = params.data.aist.fps
    poses, pelvis = walking_pose(int(seconds * fps), fps, seed)
    rot = canonical_rotation(params.data.zup_to_yup, params.data.aist.axis_remap)
    n_poses, n_pelvis = to_native(poses, pelvis, rot)
    rest = default_rest_joints(torch.float64)
    scaling = 94.0
    write_aist_motion(root / "motions" / f"{name}.pkl", n_poses.numpy(), ((n_pelvis - rest[0]) * scaling).numpy(),
                      scaling)
    return canonical_joints(poses, pelvis)


def write_mvh_frame(path: Path, joints45: torch.Tensor, **extra) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"joints": joints45.reshape(1, -1, 3).float(), "global_orient": torch.eye(3).reshape(1, 1, 3, 3),
            "body_pose": torch.eye(3).repeat(1, 23, 1, 1), "betas": torch.zeros(1, 10), "transl": None}
    data.update(extra)
    with open(path, "wb") as f:
        pickle.dump(data, f)


def make_mvh_sequence(root: Path, seq_id: str, seconds: float = 4.0, seed: int = 0, skip: tuple[int, ...] = (),
                      params=None) -> torch.Tensor:
    """Write <root>/<seq_id>/smpl_param/NNNN.pkl (every 5th frame of 25 fps video, native axes).

    Returns the canonical joints (T, 24, 3) at the released 5 fps (all frames, skipped ones included).
    """
    params = params or repo_params()
    fps = params.data.mvh.fps
    poses, pelvis = walking_pose(int(seconds * fps), fps, seed)
    joints = canonical_joints(poses, pelvis)
    rot = canonical_rotation(params.data.zup_to_yup, params.data.mvh.axis_remap)
    native = joints @ rot.to(joints.dtype)                        # row vectors: x_native = R^T x
    extra = native[:, [15] * 21]                                  # stand-ins for the 21 extra keypoints
    for k in range(joints.shape[0]):
        if k in skip:
            continue
        write_mvh_frame(root / seq_id / "smpl_param" / f"{5 * k:04d}.pkl", torch.cat((native[k], extra[k])))
    return joints


def tiny_params_dict(tmp_path: Path, **overrides) -> dict:
    """The raw params dict behind `tiny_params` (to write a params file for the `flowmimic` CLI)."""
    raw = read_yaml(REPO / "params.yaml")
    raw["data"]["aist_root"] = str(tmp_path / "raw/aist")
    raw["data"]["mvh_root"] = str(tmp_path / "raw/mvh")
    raw["demo"]["root"] = str(tmp_path / "raw")
    raw["split"]["dir"] = str(tmp_path / "splits")
    raw["cache"]["dir"] = str(tmp_path / "cache")
    raw["cache"]["workers"] = 1
    raw["validate"]["dir"] = str(tmp_path / "validate")
    raw["validate"]["metrics"] = str(tmp_path / "metrics/data.json")
    raw["stats"]["path"] = str(tmp_path / "stats/mean_std.npz")
    raw["features"]["min_frames"] = 10
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        raw[section][name] = value
    return raw


def tiny_params(tmp_path: Path, **overrides):
    """Repo params with every path under tmp_path and small sizes; `overrides` as {"section.key": value}."""
    from flowmimic.params import params_from_dict

    return params_from_dict(tiny_params_dict(tmp_path, **overrides), "tiny params")


def write_params_file(tmp_path: Path, **overrides) -> Path:
    """`tiny_params` written to `<tmp_path>/params.yaml`, for `flowmimic <stage> --params ...`."""
    import yaml

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params_dict(tmp_path, **overrides), sort_keys=False))
    return path


AIST_NAMES = ("gBR_sBM_cAll_d01_mBR0_ch01", "gBR_sFM_cAll_d02_mBR1_ch02", "gPO_sBM_cAll_d03_mPO0_ch01",
              "gPO_sFM_cAll_d04_mPO2_ch03", "gJB_sBM_cAll_d05_mJB0_ch01")
MVH_IDS = ("part_01/100001_01", "part_01/100001_02", "part_01/100002_01", "part_02/100003_01", "part_02/100004_01")


def make_tiny_tree(tmp_path: Path, **overrides):
    """A small raw tree in both native layouts (5 AIST++ motions, 5 MVHumanNet sequences of 4 performers)."""
    params = tiny_params(tmp_path, **overrides)
    aist_root, mvh_root = Path(params.data.aist_root), Path(params.data.mvh_root)
    for k, name in enumerate(AIST_NAMES):
        make_aist_sequence(aist_root, name, seconds=2.0, seed=k, params=params)
    (aist_root / "splits").mkdir(parents=True)
    (aist_root / "splits" / "pose_train.txt").write_text("\n".join(AIST_NAMES[:3] + AIST_NAMES[4:]) + "\n")
    (aist_root / "splits" / "pose_val.txt").write_text(AIST_NAMES[3] + "\n")
    (aist_root / "splits" / "pose_test.txt").write_text("")
    (aist_root / "ignore_list.txt").write_text(AIST_NAMES[4] + " \n")
    for k, seq in enumerate(MVH_IDS):
        make_mvh_sequence(mvh_root, seq, seconds=4.0, seed=k, params=params)
    return params
