"""Small native-format AIST++ / MVHumanNet files for reader tests (written by the tests themselves).

The motions are the demo synthesiser's (`flowmimic.demo.clips`), written through the demo's own
canonical -> native conversion (`demo.dataset.aist_arrays` / `mvh_frames`): one motion synthesiser.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from flowmimic.demo.clips import dance_clips, studio_clips
from flowmimic.demo.dataset import MVH_RELEASE_STRIDE, aist_arrays, mvh_frames
from flowmimic.params import load_params, read_yaml
from flowmimic.sources.aist import parse_name
from flowmimic.sources.common import canonical_rotation

REPO = Path(__file__).resolve().parents[1]
AIST_SCALING = 94.0


def repo_params():
    return load_params(REPO / "params.yaml")


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
    """Write motions/<name>.pkl: a demo dance of the name's genre in AIST++'s native frame.

    Returns its canonical joints (T, 24, 3) float64 at 60 fps (data.aist.fps).
    """
    params = params or repo_params()
    fps = params.data.aist.fps
    motion = dance_clips(1, int(seconds * fps), fps=fps, seed=seed, genres=[parse_name(name).genre])
    rot = canonical_rotation(params.data.zup_to_yup, params.data.aist.axis_remap)
    arr = aist_arrays(motion, rot, [AIST_SCALING], [1.5])[0]
    write_aist_motion(root / "motions" / f"{name}.pkl", arr["smpl_poses"], arr["smpl_trans"], AIST_SCALING)
    return motion.joints[0].double()


def write_mvh_frame(path: Path, joints45: torch.Tensor, **extra) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"joints": joints45.reshape(1, -1, 3).float(), "global_orient": torch.eye(3).reshape(1, 1, 3, 3),
            "body_pose": torch.eye(3).repeat(1, 23, 1, 1), "betas": torch.zeros(1, 10), "transl": None}
    data.update(extra)
    with open(path, "wb") as f:
        pickle.dump(data, f)


def make_mvh_sequence(root: Path, seq_id: str, seconds: float = 4.0, seed: int = 0, skip: tuple[int, ...] = (),
                      params=None) -> torch.Tensor:
    """Write <root>/<seq_id>/smpl_param/NNNN.pkl: a demo studio motion, every 5th frame of 25 fps video,
    native axes, 45 joints; the released frames numbered in `skip` are left out.

    Returns the canonical joints (T, 24, 3) float64 at the released 5 fps (all frames, skipped ones included).
    """
    params = params or repo_params()
    released = int(seconds * params.data.mvh.fps)
    video_fps = params.data.mvh.fps * MVH_RELEASE_STRIDE
    motion = studio_clips(1, (released - 1) * MVH_RELEASE_STRIDE + 1, fps=video_fps, seed=seed)
    rot = canonical_rotation(params.data.zup_to_yup, params.data.mvh.axis_remap)
    for k, frame in enumerate(mvh_frames(motion, rot, [(0.0,) * 10])[0]):
        if k not in skip:
            write_mvh_frame(root / seq_id / "smpl_param" / f"{MVH_RELEASE_STRIDE * k:04d}.pkl", frame["joints"],
                            **{key: value for key, value in frame.items() if key != "joints"})
    return motion.joints[0, ::MVH_RELEASE_STRIDE].double()


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
