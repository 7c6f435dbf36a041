"""AIST++ and MVHumanNet readers on small native files the tests write."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from flowmimic.body.skeleton import HEAD, PELVIS, default_rest_joints
from flowmimic.errors import DataError
from flowmimic import taxonomy
from flowmimic.sources import aist, mvhumannet, read_sequence
from flowmimic.sources.common import resample

from raw_fixtures import make_aist_sequence, make_mvh_sequence, repo_params, write_aist_motion, write_mvh_frame

NAME = "gKR_sFM_cAll_d29_mKR5_ch19"


@pytest.fixture()
def params():
    return repo_params()


def test_parse_name_and_genres():
    n = aist.parse_name("gBR_sBM_cAll_d04_mBR0_ch01")
    assert (n.genre, n.situation, n.camera, n.dancer, n.music, n.choreography) == ("gBR", "sBM", "cAll", "d04", "mBR0", "ch01")
    assert n.genre_id == 1 and taxonomy.genre_id("gJB") == 10 and taxonomy.genre_id("gXX") == 0
    assert len(taxonomy.GENRES) == len(set(taxonomy.GENRES)) == 10
    with pytest.raises(ValueError, match="not an AIST"):
        aist.parse_name("dance_01")


def test_aist_reader_aligns_to_canonical_frame(tmp_path, params):
    canon = make_aist_sequence(tmp_path, NAME, seconds=3.0, params=params)       # (180, 24, 3) at 60 fps
    seq = aist.read_sequence(tmp_path / "motions" / f"{NAME}.pkl", params.data, default_rest_joints())
    expected = (canon[::3, :22] - canon[:1, PELVIS:PELVIS + 1]).float()           # every 3rd frame, root-centred
    assert seq.joints.shape == (60, 22, 3) and seq.fps == 20
    assert torch.allclose(seq.joints, expected, atol=1e-4)
    assert (seq.joints[:, HEAD, 1] > seq.joints[:, PELVIS, 1]).all()              # y-up
    assert seq.genre_id == taxonomy.genre_id("gKR") and seq.performer == "d29" and seq.domain == "aist"
    assert torch.allclose(seq.joints[0, PELVIS], torch.zeros(3), atol=1e-6)


def test_aist_accepts_poses_as_24x3_and_scales_translation(tmp_path, params):
    poses = np.zeros((30, 24, 3), np.float32)
    trans = np.stack([np.zeros(30), np.zeros(30), np.linspace(0, 94.0, 30)], axis=1)   # 1 m in scaled units
    p = write_aist_motion(tmp_path / "motions" / f"{NAME}.pkl", poses, trans, scaling=94.0)
    seq = aist.read_sequence(p, params.data, default_rest_joints())
    travel = (seq.joints[-1, PELVIS] - seq.joints[0, PELVIS]).norm().item()
    assert travel == pytest.approx(27 / 29, abs=1e-4)      # frames 0..27 of 0..29, every 3rd; metres, not cm


@pytest.mark.parametrize("mutate, reason", [
    (lambda d: d.pop("smpl_trans"), "missing_key"),
    (lambda d: d.update(smpl_poses=np.zeros((10, 70), np.float32)), "bad_shape"),
    (lambda d: d["smpl_poses"].__setitem__((3, 5), np.nan), "nan"),
    (lambda d: d["smpl_trans"].__setitem__((4, 1), np.inf), "nan"),      # a frame resampling drops: still refused
    (lambda d: d.update(smpl_scaling=np.array([0.0], np.float32)), "invalid"),
])
def test_aist_bad_files_name_the_file(tmp_path, params, mutate, reason):
    data = {"smpl_poses": np.zeros((10, 72), np.float32), "smpl_trans": np.zeros((10, 3), np.float32),
            "smpl_scaling": np.array([94.0], np.float32), "smpl_loss": 1.0}
    mutate(data)
    path = tmp_path / "motions" / f"{NAME}.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError) as e:
        aist.read_sequence(path, params.data, default_rest_joints())
    assert e.value.reason == reason and str(path) in str(e.value)


@pytest.mark.parametrize("value, reason", [
    (None, "bad_type"), ("abc", "bad_type"), ({"a": 1}, "bad_type"), (np.array(["1.0"] * 72), "bad_type"),
    (np.zeros((10, 72), bool), "bad_type"), ([[0.0] * 72, [0.0]], "bad_shape"), ([[0.0] * 5] * 10, "bad_shape"),
    (np.zeros((0, 72), np.float32), "empty"),
])
def test_aist_poses_of_the_wrong_type_or_shape_are_data_errors(tmp_path, params, value, reason):
    data = {"smpl_poses": value, "smpl_trans": np.zeros((0 if reason == "empty" else 10, 3), np.float32),
            "smpl_scaling": np.array([94.0], np.float32)}
    path = tmp_path / "motions" / f"{NAME}.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError) as e:
        aist.read_sequence(path, params.data, default_rest_joints())
    assert e.value.reason == reason and str(path) in str(e.value)
    assert ("0 frames" if reason == "empty" else "smpl_poses") in str(e.value)


def test_aist_scaling_and_poses_may_be_plain_python_values(tmp_path, params):
    data = {"smpl_poses": [[0.0] * 72] * 30, "smpl_trans": np.zeros((30, 3)), "smpl_scaling": 94.0}
    path = tmp_path / "motions" / f"{NAME}.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(data))
    assert aist.read_sequence(path, params.data, default_rest_joints()).joints.shape == (10, 22, 3)


def test_aist_truncated_and_badly_named_files(tmp_path, params):
    path = tmp_path / "motions" / f"{NAME}.pkl"
    make_aist_sequence(tmp_path, NAME, seconds=1.0, params=params)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="unreadable pickle") as e:
        aist.read_sequence(path, params.data, default_rest_joints())
    assert str(path) in str(e.value)
    other = tmp_path / "motions" / "my_dance.pkl"
    other.write_bytes(b"")
    with pytest.raises(DataError, match="not an AIST"):
        aist.read_sequence(other, params.data, default_rest_joints())


def test_split_and_ignore_lists_strip_whitespace(tmp_path):
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "pose_train.txt").write_text("a\nb \n\n c\n")
    (tmp_path / "ignore_list.txt").write_text("b \n")
    assert aist.read_split(tmp_path, "train") == ["a", "b", "c"]
    assert aist.read_ignore_list(tmp_path) == {"b"}


def test_mvh_reader_resamples_and_aligns(tmp_path, params):
    canon = make_mvh_sequence(tmp_path, "part_01/100231_01", seconds=4.0, params=params)  # 20 frames at 5 fps
    seq = mvhumannet.read_sequence(tmp_path, "part_01/100231_01", params.data)
    assert seq.joints.shape == (77, 22, 3)                     # (20 - 1) * 4 + 1 frames at 20 fps
    expected = (canon[:, :22] - canon[:1, PELVIS:PELVIS + 1]).float()
    assert torch.allclose(seq.joints[::4], expected, atol=1e-4)       # passes through every released frame
    assert (seq.joints[:, HEAD, 1] > seq.joints[:, PELVIS, 1]).all()
    assert seq.performer == "100231" and seq.genre_id == 0 and seq.notes == ()


def test_mvh_short_gap_is_interpolated_and_noted_long_gap_skips(tmp_path, params):
    make_mvh_sequence(tmp_path, "p/1_a", seconds=4.0, skip=(7,), params=params)
    seq = mvhumannet.read_sequence(tmp_path, "p/1_a", params.data)
    assert seq.joints.shape[0] == 77 and "1 missing frame" in seq.notes[0]
    make_mvh_sequence(tmp_path, "p/2_a", seconds=4.0, skip=tuple(range(5, 12)), params=params)
    with pytest.raises(DataError, match="missing frame") as e:
        mvhumannet.read_sequence(tmp_path, "p/2_a", params.data)
    assert e.value.reason == "gap"


def test_mvh_bad_frames_name_the_frame_file(tmp_path, params):
    make_mvh_sequence(tmp_path, "p/1_a", seconds=2.0, params=params)
    bad = tmp_path / "p/1_a/smpl_param/0015.pkl"
    write_mvh_frame(bad, torch.full((45, 3), float("nan")))
    with pytest.raises(DataError, match="0015.pkl") as e:
        mvhumannet.read_sequence(tmp_path, "p/1_a", params.data)
    assert e.value.reason == "nan"
    write_mvh_frame(bad, torch.zeros(10, 3))
    with pytest.raises(DataError, match="0015.pkl") as e:
        mvhumannet.read_sequence(tmp_path, "p/1_a", params.data)
    assert e.value.reason == "bad_shape"


def test_mvh_listing_and_performer_regex(tmp_path, params):
    for seq in ("part_01/100231_01", "part_01/100231_02", "part_02/100777_01"):
        make_mvh_sequence(tmp_path, seq, seconds=1.0, params=params)
    assert mvhumannet.list_sequences(tmp_path) == ["part_01/100231_01", "part_01/100231_02", "part_02/100777_01"]
    assert mvhumannet.performer_of("part_02/100777_01", params.data.mvh.performer_regex) == "100777"
    with pytest.raises(DataError, match="does not match"):
        mvhumannet.performer_of("part/xyz", r"^(?P<performer>\d+)_")


def test_read_sequence_dispatches_on_layout(tmp_path, params):
    make_aist_sequence(tmp_path / "aist", NAME, seconds=1.0, params=params)
    make_mvh_sequence(tmp_path / "mvh", "part_01/100231_01", seconds=2.0, params=params)
    assert read_sequence(tmp_path / "aist" / "motions" / f"{NAME}.pkl", params).domain == "aist"
    assert read_sequence(tmp_path / "mvh" / "part_01" / "100231_01", params).id == "part_01/100231_01"
    assert read_sequence(tmp_path / "mvh" / "part_01" / "100231_01" / "smpl_param", params).domain == "mvh"
    with pytest.raises(DataError, match="not an AIST"):
        read_sequence(tmp_path, params)


def test_resample_keeps_every_kth_frame_or_interpolates_smoothly():
    x = torch.randn(61, 2, 3)
    assert torch.equal(resample(x, torch.arange(61) / 60, 20, src_fps=60), x[::3])
    t = torch.linspace(0, 2, 11, dtype=torch.float64)
    sig = torch.sin(t).view(-1, 1, 1).expand(-1, 1, 3)
    out = resample(sig, t, 20)
    t_out = torch.arange(out.shape[0], dtype=torch.float64) / 20
    assert out.shape[0] == 41
    err = (out[:, 0, 0] - torch.sin(t_out)).abs()
    assert err[4:-4].max() < 3e-4 and err.max() < 5e-3       # cubic Hermite tracks a smooth signal (ends one-sided)
    assert torch.allclose(out[::4, 0, 0], sig[:, 0, 0], atol=1e-12)   # and passes through every sample


def test_aist_with_a_model_file_fk_equals_smplx_backend(tmp_path, params):
    from smpl_fixture import write_procedural_smpl

    from flowmimic.sources import aist_reader_args

    write_procedural_smpl(tmp_path / "smpl" / "SMPL_MALE.pkl", fmt="pkl_chumpy")
    make_aist_sequence(tmp_path, NAME, seconds=1.0, params=params)
    path = tmp_path / "motions" / f"{NAME}.pkl"
    out = {}
    for backend in ("fk", "smplx"):
        data = params.data.model_copy(update={"smpl_model_dir": str(tmp_path / "smpl"), "joints_backend": backend})
        out[backend] = aist.read_sequence(path, data, **aist_reader_args(data)).joints
    default = aist.read_sequence(path, params.data, **aist_reader_args(params.data)).joints
    assert torch.allclose(out["fk"], out["smplx"], atol=1e-5)
    assert not torch.allclose(out["fk"], default, atol=1e-3)      # the model's skeleton was really used
