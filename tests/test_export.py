"""Motion export: BVH checked by an independent reader (bvhio), SMPL .pkl checked by our AIST++ reader and
smplx, the IK's bone-fixing error, and `flowmimic export`'s bad-input handling."""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from flowmimic.body.rotation import matrix_to_axis_angle
from flowmimic.body.skeleton import N_JOINTS, PARENTS, TARGET_BONE_LENGTHS, default_rest_joints
from flowmimic.cli import main
from flowmimic.demo.dances import genre_tempo, synthesize_dances
from flowmimic.demo.motion import DanceSpec, StudioSpec
from flowmimic.demo.studio import synthesize_studio
from flowmimic.export.bvh import bvh_text, write_bvh
from flowmimic.export.ik import bone_fix_error, joints_to_local_rotations, skeleton_offsets
from flowmimic.export.roundtrip import aist_pkl_round_trip, bvh_round_trip, joint_error, read_bvh_joints
from flowmimic.export.smpl import joints_to_aist_motion, write_aist_pkl
from flowmimic.features.humanml3d import joints_to_features
from flowmimic.sources import aist, aist_reader_args
from flowmimic.taxonomy import GENRES

from raw_fixtures import REPO, repo_params

bvhio = pytest.importorskip("bvhio", reason="bvhio is a test dependency (requirements.txt)")

HUMANML3D = REPO / "tests" / "data" / "humanml3d" / "new_joints_012314.npy"
FPS = 20.0
AIST_NAME = "gBR_sBM_cAll_d01_mBR0_ch01"


@pytest.fixture(scope="module")
def params():
    return repo_params()


@pytest.fixture(scope="module")
def dances() -> list[np.ndarray]:
    """Demo ground truth of every genre, 3 s at 20 fps on the built-in skeleton: constant bones."""
    specs = [DanceSpec(genre=g, dancer_seed=i, advanced=bool(i % 2), bpm=genre_tempo(g, i % 6), seconds=3.0,
                       seed=100 + i) for i, g in enumerate(GENRES)]
    batch = synthesize_dances(specs, default_rest_joints(), FPS)
    return [batch.sequence(b)[2][:, :N_JOINTS].double().numpy() for b in range(len(specs))]


@pytest.fixture(scope="module")
def humanml3d() -> np.ndarray:
    return np.load(HUMANML3D).astype(np.float64)


# ----------------------------------------------------------------------------- BVH


def test_bvh_round_trip_by_bvhio_on_every_demo_genre(tmp_path, dances):
    for genre, joints in zip(GENRES, dances):
        path = write_bvh(tmp_path / f"{genre}.bvh", joints, FPS)
        back, frame_time = read_bvh_joints(path)
        assert back.shape == joints.shape
        assert frame_time == pytest.approx(1 / FPS)
        err = np.linalg.norm(back - joints, axis=-1).max()
        assert err <= 1e-3, (genre, err)


def test_bvh_round_trip_on_a_studio_performer(tmp_path):
    batch = synthesize_studio([StudioSpec(performer_seed=3, seconds=3.0, seed=7)], default_rest_joints(), FPS)
    joints = batch.sequence(0)[2][:, :N_JOINTS].double().numpy()       # a scaled body: other bone lengths
    back, _ = read_bvh_joints(write_bvh(tmp_path / "studio.bvh", joints, FPS))
    assert np.linalg.norm(back - joints, axis=-1).max() <= 1e-3


@pytest.mark.parametrize("units, order, skeleton", [("m", "ZXY", "median"), ("cm", "XYZ", "median"),
                                                    ("m", "YZX", "target")])
def test_bvh_round_trip_on_humanml3d_sample(tmp_path, humanml3d, units, order, skeleton):
    """HumanML3D's published joints are on its target skeleton, so both skeleton choices fit them."""
    path = write_bvh(tmp_path / "sample.bvh", humanml3d, 30.0, skeleton=skeleton, units=units, order=order)
    text = path.read_text()
    assert f"CHANNELS 6 Xposition Yposition Zposition {' '.join(a + 'rotation' for a in order)}" in text
    back, frame_time = read_bvh_joints(path, units)
    assert frame_time == pytest.approx(1 / 30.0)
    assert np.linalg.norm(back - humanml3d, axis=-1).max() <= 1e-3


def test_bvh_skeleton_is_fixed_and_has_the_chosen_lengths(dances):
    joints = dances[0]
    bones = np.linalg.norm(joints[:, 1:] - joints[:, list(PARENTS[1:])], axis=-1)
    median = skeleton_offsets(joints, "median").norm(dim=-1)[1:].numpy()
    assert np.allclose(median, np.median(bones, axis=0), atol=1e-9)
    target = skeleton_offsets(joints, "target").norm(dim=-1)[1:].numpy()
    assert np.allclose(target, TARGET_BONE_LENGTHS[1:], atol=1e-9)
    # The demo's built-in skeleton has the target lengths too; a scaled copy of it does not fit "target".
    big = joints * 1.1
    assert bone_fix_error(big, "median").max_m < 1e-6
    assert bone_fix_error(big, "target").max_m > 0.05


def test_bone_fix_error_on_varying_bones_is_positive_and_bounded(tmp_path, humanml3d):
    sigma = 0.01
    noisy = humanml3d + np.random.default_rng(0).normal(0.0, sigma, humanml3d.shape)
    err = bone_fix_error(noisy)
    assert bone_fix_error(humanml3d).max_m < 1e-5
    assert err.mean_m > 0.2 * sigma
    # Aiming each bone from where its joint landed keeps the error below the noise itself (sigma * sqrt(3)
    # per joint); carrying every error down the chains (aiming from the targets) gives ~1.4x more.
    assert err.mean_m < sigma * math.sqrt(3) and err.max_m < 8 * sigma
    # The BVH holds exactly that re-posed motion: bvhio sees the same error.
    seen = bvh_round_trip(tmp_path / "noisy.bvh", noisy, FPS)
    assert seen.mean_m == pytest.approx(err.mean_m, abs=1e-5) and seen.max_m == pytest.approx(err.max_m, abs=1e-5)


def test_ik_gives_smallest_twist_free_rotations(dances):
    """Single-child joints swing without twist: the local rotation axis is perpendicular to the rest bone."""
    joints = dances[3]
    offsets = skeleton_offsets(joints)
    local, root = joints_to_local_rotations(joints, offsets)
    assert torch.allclose(root, torch.from_numpy(joints[:, 0]))
    knee_axis = matrix_to_axis_angle(local[:, 4])                    # left knee, child: left ankle (7)
    assert (knee_axis @ offsets[7]).abs().max() < 1e-9
    assert torch.allclose(local[:, 10], torch.eye(3, dtype=torch.float64).expand_as(local[:, 10]))  # a leaf


def test_bvh_text_rejects_bad_input(humanml3d):
    with pytest.raises(ValueError, match="shape"):
        bvh_text(humanml3d[:, :20], FPS)
    bad = humanml3d.copy()
    bad[5, 3, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN/Inf at frames \[5\]"):
        bvh_text(bad, FPS)
    with pytest.raises(ValueError, match="fps"):
        bvh_text(humanml3d, 0.0)
    with pytest.raises(ValueError, match="units"):
        bvh_text(humanml3d, FPS, units="mm")  # type: ignore[arg-type]


def test_read_bvh_joints_wants_smpl_joints(tmp_path, humanml3d):
    path = tmp_path / "renamed.bvh"
    path.write_text(bvh_text(humanml3d, FPS).replace("JOINT left_knee", "JOINT knee_l"))
    with pytest.raises(ValueError, match="expected SMPL's 22 joints"):
        read_bvh_joints(path)


def test_joint_error_is_the_euclidean_distance(humanml3d):
    shifted = humanml3d.copy()
    shifted[:, 3] += [0.003, 0.004, 0.0]                               # one joint 5 mm off in every frame
    err = joint_error(shifted, humanml3d)
    assert err.max_m == pytest.approx(0.005) and err.mean_m == pytest.approx(0.005 / N_JOINTS)
    with pytest.raises(ValueError, match="shapes"):
        joint_error(humanml3d[1:], humanml3d)


# ----------------------------------------------------------------------------- SMPL / AIST++


def test_aist_pkl_reads_back_with_our_reader(tmp_path, params, dances):
    joints = dances[7]
    path = write_aist_pkl(tmp_path / "motions" / f"{AIST_NAME}.pkl", joints, FPS, params.data)
    with open(path, "rb") as f:
        raw = pickle.load(f)                                            # plain pickle, AIST++'s keys
    n = (joints.shape[0] - 1) * 3 + 1                                   # 60 fps over the same span
    assert raw["smpl_poses"].shape == (n, 72) and raw["smpl_trans"].shape == (n, 3)
    assert raw["smpl_scaling"].tolist() == [1.0] and raw["smpl_loss"] == 0
    seq = aist.read_sequence(path, params.data, **aist_reader_args(params.data))
    expected = joints - joints[:1, :1]                                  # the reader centres frame 0's pelvis
    assert seq.joints.shape == joints.shape
    assert np.linalg.norm(seq.joints.numpy() - expected, axis=-1).max() < 0.01


def test_aist_pkl_round_trip_shows_the_skeleton_mismatch(tmp_path, params, dances, humanml3d):
    """On the skeleton they were made on, demo dances come back to rounding (float32 reader); HumanML3D's
    sample, whose pelvis and chest are shaped otherwise, comes back off by millimetres, not centimetres."""
    path = tmp_path / "motions" / f"{AIST_NAME}.pkl"
    assert aist_pkl_round_trip(path, dances[4], params.data).max_m < 1e-5
    err = aist_pkl_round_trip(path, humanml3d, params.data)
    assert 0.002 < err.mean_m < 0.01 and err.max_m < 0.04


def test_aist_pkl_rotations_are_slerped_to_60_fps(params, dances):
    motion = joints_to_aist_motion(dances[2], FPS, params.data)
    rot = torch.from_numpy(motion["smpl_poses"]).reshape(-1, 24, 3)
    from flowmimic.body.rotation import axis_angle_to_matrix

    m = axis_angle_to_matrix(rot[:, :N_JOINTS])
    rel = lambda a, b: matrix_to_axis_angle(m[a].transpose(-1, -2) @ m[b])  # noqa: E731
    for k in range(0, m.shape[0] - 3, 3):
        full, third = rel(k, k + 3), rel(k, k + 1)
        # Slerp: the in-between frame turns a third of the way, about the same axis.
        assert torch.allclose(third, full / 3, atol=1e-9)
    trans = motion["smpl_trans"]
    start, end = trans[0:-1:3], trans[3::3]
    assert np.allclose(trans[1::3], start + (end - start) / 3, atol=1e-12)     # translation: linear


def test_aist_pkl_drives_smplx_on_a_model_file(tmp_path, params):
    from smpl_fixture import write_procedural_smpl

    from flowmimic.body.smpl_model import SmplModel
    from flowmimic.sources.common import canonical_rotation

    model = SmplModel.from_file(write_procedural_smpl(tmp_path / "smpl" / "SMPL_MALE.pkl", fmt="pkl"))
    data = params.data.model_copy(update={"smpl_model_dir": str(tmp_path / "smpl")})
    rest = model.rest_joints(dtype=torch.float64)
    spec = DanceSpec(genre="gKR", dancer_seed=5, advanced=True, bpm=genre_tempo("gKR", 2), seconds=1.5, seed=9)
    joints = synthesize_dances([spec], rest, FPS).sequence(0)[2][:, :N_JOINTS].double().numpy()
    path = write_aist_pkl(tmp_path / "motions" / f"{AIST_NAME}.pkl", joints, FPS, data)   # the model's skeleton

    # smplx's full forward pass (mesh LBS), fed the file as AIST++ tools feed it.
    raw = pickle.loads(path.read_bytes())
    poses = torch.from_numpy(raw["smpl_poses"])
    body = model.to_smplx(batch_size=poses.shape[0], dtype=torch.float64)
    out = body(global_orient=poses[:, :3], body_pose=poses[:, 3:],
               transl=torch.from_numpy(raw["smpl_trans"] / raw["smpl_scaling"][0]))
    assert out.vertices.shape == (poses.shape[0], 6890, 3)
    yup = out.joints[:, :N_JOINTS].detach() @ canonical_rotation(data.zup_to_yup, data.aist.axis_remap).T
    assert np.linalg.norm(yup[::3].numpy() - joints, axis=-1).max() < 0.01
    # Our AIST++ reader, posing the same model file.
    seq = aist.read_sequence(path, data, **aist_reader_args(data))
    assert np.linalg.norm(seq.joints.numpy() - (joints - joints[:1, :1]), axis=-1).max() < 0.01
    # Posed on the built-in skeleton instead, the pkl would be a different one.
    other = joints_to_aist_motion(joints, FPS, data, rest_joints=default_rest_joints(torch.float64))
    assert not np.allclose(other["smpl_trans"], raw["smpl_trans"], atol=1e-3)


# ----------------------------------------------------------------------------- the command


def _cli(*args: str) -> int:
    return main(["export", *map(str, args), "--params", str(REPO / "params.yaml")])


def test_export_command_writes_bvh_from_joints_and_features(tmp_path, humanml3d):
    joints_npy, feats_npy = tmp_path / "j.npy", tmp_path / "f.npy"
    np.save(joints_npy, humanml3d.astype(np.float32))
    np.save(feats_npy, joints_to_features(humanml3d).numpy())
    assert _cli(joints_npy, tmp_path / "out" / "j.bvh", "--fps", "30", "--units", "cm") == 0
    back, frame_time = read_bvh_joints(tmp_path / "out" / "j.bvh", "cm")
    assert frame_time == pytest.approx(1 / 30) and np.linalg.norm(back - humanml3d, axis=-1).max() <= 1e-3
    assert _cli(feats_npy, tmp_path / "f.bvh") == 0                     # features: joints recovered, T-1 frames
    back, frame_time = read_bvh_joints(tmp_path / "f.bvh")
    assert back.shape == (humanml3d.shape[0] - 1, N_JOINTS, 3) and frame_time == pytest.approx(1 / 20)


def test_export_command_writes_pkl(tmp_path, params, dances):
    src = tmp_path / "dance.npy"
    np.save(src, dances[0])
    out = tmp_path / "motions" / f"{AIST_NAME}.pkl"
    assert _cli(src, out) == 0
    seq = aist.read_sequence(out, params.data, **aist_reader_args(params.data))
    assert np.linalg.norm(seq.joints.numpy() - (dances[0] - dances[0][:1, :1]), axis=-1).max() < 0.01


@pytest.mark.parametrize("case", ["shape", "nan", "features_nan", "pickle", "missing", "extension", "unwritable",
                                  "out_is_dir"])
def test_export_command_bad_input_one_line_no_output(tmp_path, caplog, humanml3d, case):
    src, out = tmp_path / "in.npy", tmp_path / "out.bvh"
    arr = humanml3d.copy()
    if case == "shape":
        arr = arr[:, :21]
    elif case == "nan":
        arr[3, 0, 0] = np.inf
    elif case == "features_nan":
        arr = joints_to_features(humanml3d).numpy()
        arr[4, 7] = np.nan
    np.save(src, arr)
    blame = src
    if case == "pickle":
        np.save(src, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "missing":
        src = tmp_path / "nope.npy"
        blame = src
    elif case == "extension":
        out = blame = tmp_path / "out.fbx"
    elif case == "unwritable":
        (tmp_path / "file").write_text("x")
        out = blame = tmp_path / "file" / "out.bvh"                    # parent is a file: no folder can be made
    elif case == "out_is_dir":
        out = blame = tmp_path / "dir.bvh"
        out.mkdir()
    before = set(tmp_path.rglob("*"))
    with caplog.at_level(logging.ERROR, logger="flowmimic"):
        assert _cli(src, out) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0] and errors[0].startswith(f"{blame}: ")
    assert set(tmp_path.rglob("*")) == before                          # no output, no temp file left
