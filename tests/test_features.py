"""HumanML3D 263-D features: agreement with HumanML3D's published sample, invariances, contacts,
batching, dtypes, input errors, and the `flowmimic features` / `flowmimic joints` CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from flowmimic.body.kinematics import smpl_forward_kinematics
from flowmimic.body.rotation import quat_about_y, quat_rotate
from flowmimic.body.skeleton import N_JOINTS, PARENTS, default_rest_joints, target_offsets
from flowmimic.cli import main as cli_main
from flowmimic.demo.clips import dance_clips
from flowmimic.errors import DataError
from flowmimic.features import humanml3d as hml
from flowmimic.features.convert import convert_file
from flowmimic.features.humanml3d import (
    FEET_THRESHOLD, features_to_joints, joints_to_features, joints_to_features_list,
)
from flowmimic.features.layout import CONTACTS, DIM, RIC, ROOT, ROT_6D
from flowmimic.params import read_yaml
from flowmimic.taxonomy import GENRES

DATA = Path(__file__).parent / "data" / "humanml3d"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ref_joints() -> np.ndarray:
    return np.load(DATA / "new_joints_012314.npy")            # (170, 22, 3) float32


@pytest.fixture(scope="module")
def ref_feats() -> np.ndarray:
    return np.load(DATA / "new_joint_vecs_012314.npy")        # (170, 263) float32


def _yaw(joints: np.ndarray | torch.Tensor, angle: float, shift=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """Rotate joints about +y by `angle` radians and translate them."""
    j = torch.as_tensor(joints, dtype=torch.float64)
    q = quat_about_y(torch.tensor(angle / 2, dtype=torch.float64))
    return quat_rotate(q, j) + torch.tensor(shift, dtype=torch.float64)


def _fk_motion(n_frames: int, seed: int) -> torch.Tensor:
    """(T, 22, 3) float64 joints: a demo dance at 20 fps (genre chosen by the seed)."""
    genre = GENRES[seed % len(GENRES)]
    return dance_clips(1, n_frames, fps=20.0, seed=seed, genres=[genre]).joints[0, :, :N_JOINTS].double()


# ----------------------------------------------------------------------------- HumanML3D reference


def test_features_to_joints_reproduces_reference(ref_joints, ref_feats):
    rec = features_to_joints(torch.from_numpy(ref_feats))
    assert rec.shape == (170, 22, 3) and rec.dtype == torch.float32
    assert np.abs(rec.numpy() - ref_joints).max() <= 1e-5
    rec64 = features_to_joints(ref_feats.astype(np.float64))
    assert rec64.dtype == torch.float64
    assert np.abs(rec64.numpy() - ref_joints).max() <= 1e-5


def test_joints_to_features_matches_reference(ref_joints, ref_feats):
    feats = joints_to_features(ref_joints)
    assert feats.shape == (169, DIM) and feats.dtype == torch.float32
    f, r = feats.numpy()[:100], ref_feats[:100]
    # The reference is float32 throughout; its own re-processing agrees to <= 1e-5 on frames 0-99
    # (later frames drift: the heading smoothing sees a sequence one frame shorter; see README).
    assert np.abs(f[:, :CONTACTS.start] - r[:, :CONTACTS.start]).max() <= 2e-5
    np.testing.assert_array_equal(f[:, CONTACTS], r[:, CONTACTS])
    assert 0 < f[:, CONTACTS].sum() < f[:, CONTACTS].size      # both contact states occur
    # Later frames still agree to the README's ~1e-2.
    assert np.abs(feats.numpy() - ref_feats[:169]).max() < 3e-2


def test_round_trip_joints_features_joints(ref_joints):
    rec = features_to_joints(joints_to_features(ref_joints.astype(np.float64)))
    assert np.abs(rec.numpy() - ref_joints[:-1]).max() <= 1e-5


def test_uniform_skeleton_is_humanml3d_ik_then_fk():
    """The direct bone rescaling equals HumanML3D's literal FK(IK(joints)) with target offsets."""
    j = _fk_motion(12, seed=3)
    bones = j[:, 1:] - j[:, list(PARENTS[1:])]
    stretch = torch.linspace(0.7, 1.3, 21, dtype=torch.float64)[:, None]
    for c in range(1, N_JOINTS):                                  # a skeleton of other proportions
        j[:, c] = j[:, PARENTS[c]] + bones[:, c - 1] * stretch[c - 1]
    j = j[None]
    new = hml._uniform_skeleton(j)
    tgt = target_offsets(torch.float64)
    lengths = (j[0, 0, 1:] - j[0, 0, list(PARENTS[1:])]).norm(dim=-1)
    scale = (tgt[5].abs().max() + tgt[8].abs().max()) / (lengths[4] + lengths[7])
    literal = hml._fk(*hml._ik(j, smooth=False), tgt, j[:, :, 0] * scale)
    torch.testing.assert_close(new, literal, atol=1e-12, rtol=0)
    new_len = (new[0, :, 1:] - new[0, :, list(PARENTS[1:])]).norm(dim=-1)
    torch.testing.assert_close(new_len, tgt[1:].norm(dim=-1).expand_as(new_len), atol=1e-12, rtol=0)


def test_gaussian_smoothing_matches_scipy_definition():
    """scipy's gaussian_filter1d(sigma=20, mode='nearest', truncate=4) written out naively."""
    x = torch.randn(2, 37, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    radius = int(4.0 * 20 + 0.5)
    k = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * k**2 / 400.0)
    w /= w.sum()
    xn = x.numpy()
    expect = np.stack([sum(w[i] * xn[:, min(max(t + k[i], 0), 36)] for i in range(len(k)))
                       for t in range(37)], axis=1)
    np.testing.assert_allclose(hml._gaussian_smooth_time(x).numpy(), expect, atol=1e-13)
    torch.testing.assert_close(hml._gaussian_smooth_time(x, block=8), hml._gaussian_smooth_time(x))


# ----------------------------------------------------------------------------- invariances, contacts


@pytest.mark.parametrize("angle", [0.7, math.pi, -2.0])
def test_invariant_to_heading_and_horizontal_translation(ref_joints, angle):
    base = joints_to_features(ref_joints[:60].astype(np.float64))
    moved = joints_to_features(_yaw(ref_joints[:60], angle, shift=(3.0, 0.4, -1.5)))
    torch.testing.assert_close(moved, base, atol=1e-9, rtol=0)


def test_scale_free_retargeting(ref_joints):
    """A uniformly larger body is retargeted to the same target skeleton (all but contacts)."""
    base = joints_to_features(ref_joints[:40].astype(np.float64))
    big = joints_to_features(ref_joints[:40].astype(np.float64) * 1.25)
    torch.testing.assert_close(big[:, :CONTACTS.start], base[:, :CONTACTS.start], atol=1e-9, rtol=0)


def test_foot_contacts_planted_vs_sliding():
    t = 10
    poses = torch.zeros(t, 24, 3, dtype=torch.float64)
    poses[:, 2, 0] = torch.linspace(0.0, 1.2, t)                 # right leg swings forward, 0.13 rad/frame
    transl = torch.tensor([0.0, 0.9, 0.0], dtype=torch.float64).expand(t, 3)
    j = smpl_forward_kinematics(poses, default_rest_joints(torch.float64), transl)[:, :N_JOINTS]
    c = joints_to_features(j)[:, CONTACTS]                         # (T-1, 4): L ankle, L toe, R ankle, R toe
    assert torch.equal(c[:, :2], torch.ones(t - 1, 2, dtype=torch.float64))
    assert torch.equal(c[:, 2:], torch.zeros(t - 1, 2, dtype=torch.float64))


def test_foot_contact_threshold_is_used():
    """The whole body glides 5 cm per frame: squared displacement 0.0025 m^2 per foot joint."""
    j = default_rest_joints(torch.float64)[:N_JOINTS] + torch.tensor([0.0, 0.9, 0.0], dtype=torch.float64)
    step = torch.tensor([0.05, 0.0, 0.0], dtype=torch.float64)
    j = j + torch.arange(6, dtype=torch.float64)[:, None, None] * step
    assert joints_to_features(j)[:, CONTACTS].sum() == 0                       # 0.0025 >= 0.002
    assert joints_to_features(j, feet_threshold=0.003)[:, CONTACTS].min() == 1  # 0.0025 < 0.003
    still = j[:1].expand(6, -1, -1)
    assert joints_to_features(still)[:, CONTACTS].min() == 1


# ----------------------------------------------------------------------------- batching, dtypes


def test_batched_equals_per_sequence(ref_joints):
    seqs = torch.stack([_fk_motion(30, seed=1), _yaw(ref_joints[:30], 1.0, (1.0, 0.0, 2.0)),
                        _fk_motion(30, seed=2)]).to(torch.float32)
    batched = joints_to_features(seqs)
    assert batched.shape == (3, 29, DIM)
    for i in range(3):
        torch.testing.assert_close(batched[i], joints_to_features(seqs[i]), atol=1e-6, rtol=0)
    nested = joints_to_features(seqs.reshape(1, 3, 30, 22, 3))
    assert nested.shape == (1, 3, 29, DIM)
    torch.testing.assert_close(nested[0], batched, atol=1e-6, rtol=0)


def test_list_helper_unequal_lengths(ref_joints):
    items = [ref_joints[:30], _fk_motion(20, seed=4).numpy(), ref_joints[5:35], ref_joints[:2]]
    out = joints_to_features_list(items)
    assert [tuple(o.shape) for o in out] == [(29, DIM), (19, DIM), (29, DIM), (1, DIM)]
    assert [o.dtype for o in out] == [torch.float32, torch.float64, torch.float32, torch.float32]
    for item, o in zip(items, out):
        torch.testing.assert_close(o, joints_to_features(item), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"joints\[1\] contain NaN/Inf at frames \[2\]"):
        bad = _fk_motion(5, seed=0)
        bad[2, 3, 0] = float("nan")
        joints_to_features_list([ref_joints[:5], bad])


def test_float64_path(ref_joints, ref_feats):
    f64 = joints_to_features(ref_joints.astype(np.float64))
    assert f64.dtype == torch.float64
    assert joints_to_features(ref_joints, dtype=torch.float64).dtype == torch.float64
    assert joints_to_features(ref_joints.astype(np.float64), dtype=torch.float32).dtype == torch.float32
    assert np.abs(f64.numpy()[:100, :CONTACTS.start] - ref_feats[:100, :CONTACTS.start]).max() <= 2e-5
    torch.testing.assert_close(f64.to(torch.float32), joints_to_features(ref_joints), atol=2e-5, rtol=0)


def test_features_are_finite_and_rotations_valid():
    f = joints_to_features(_fk_motion(25, seed=5))
    assert torch.isfinite(f).all()
    six = f[:, ROT_6D].reshape(24, 21, 2, 3)                      # col0, col1 of each local rotation
    torch.testing.assert_close(six.norm(dim=-1), torch.ones(24, 21, 2, dtype=torch.float64))
    dots = (six[:, :, 0] * six[:, :, 1]).sum(-1)
    torch.testing.assert_close(dots, torch.zeros_like(dots), atol=1e-12, rtol=0)
    assert f[:, ROOT].abs().max() < 1.5 and f[:, RIC].abs().max() < 2.0


def test_features_to_joints_batched_and_differentiable(ref_feats):
    f = torch.from_numpy(ref_feats[:20]).repeat(2, 1, 1).requires_grad_(True)
    j = features_to_joints(f)
    assert j.shape == (2, 20, 22, 3)
    j.sum().backward()
    assert f.grad is not None and torch.isfinite(f.grad).all()


# ----------------------------------------------------------------------------- errors


def test_bad_inputs_raise_clear_errors(ref_joints):
    with pytest.raises(ValueError, match=r"\(\.\.\., T, 22, 3\)"):
        joints_to_features(np.zeros((10, 21, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(\.\.\., T, 22, 3\)"):
        joints_to_features(np.zeros((22, 3), np.float32))
    with pytest.raises(ValueError, match="at least 2 frames"):
        joints_to_features(ref_joints[:1])
    bad = ref_joints[:10].copy()
    bad[3, 5, 1] = np.nan
    bad[4, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"joints contain NaN/Inf at frames \[3, 4\]"):
        joints_to_features(bad)
    batch = np.stack([ref_joints[:10], bad, bad])
    with pytest.raises(ValueError, match=r"in sequence 1 at frames \[3, 4\] \(2 sequences affected\)"):
        joints_to_features(batch)
    with pytest.raises(ValueError, match=r"\(\.\.\., N, 263\)"):
        features_to_joints(np.zeros((5, 262), np.float32))


# ----------------------------------------------------------------------------- files and CLI


def test_cli_round_trip(tmp_path, ref_joints):
    src, feats_path, joints_path = tmp_path / "j.npy", tmp_path / "out" / "f.npy", tmp_path / "j2.npy"
    np.save(src, ref_joints)                 # whole sequence: already on HumanML3D's floor/origin
    params_file = REPO / "params.yaml"
    assert cli_main(["features", str(src), str(feats_path), "--params", str(params_file)]) == 0
    feats = np.load(feats_path)
    assert feats.shape == (169, DIM) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats, joints_to_features(ref_joints).numpy())
    assert cli_main(["joints", str(feats_path), str(joints_path)]) == 0
    joints = np.load(joints_path)
    assert joints.shape == (169, 22, 3)
    assert np.abs(joints - ref_joints[:169]).max() <= 1e-5

    pair = np.stack([ref_joints[:50], ref_joints[50:100]])            # (N, T, 22, 3)
    np.save(src, pair)
    # the threshold comes from the params file's features.feet_threshold, not a default in code
    raw = read_yaml(params_file)
    raw["features"]["feet_threshold"] = 1e-6
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    assert cli_main(["features", str(src), str(feats_path), "--params", str(tmp_path / "p.yaml")]) == 0
    feats = np.load(feats_path)
    assert feats.shape == (2, 49, DIM)
    np.testing.assert_array_equal(feats, joints_to_features(pair, feet_threshold=1e-6).numpy())
    assert feats[..., CONTACTS].sum() < joints_to_features(pair)[..., CONTACTS].sum()
    assert cli_main(["joints", str(feats_path), str(joints_path)]) == 0
    assert np.load(joints_path).shape == (2, 49, 22, 3)


def test_convert_errors_name_the_file(tmp_path, ref_joints):
    bad_shape = tmp_path / "bad_shape.npy"
    np.save(bad_shape, np.zeros((10, 24, 3), np.float32))
    with pytest.raises(DataError, match="bad_shape.npy: expected joints") as e:
        convert_file(bad_shape, tmp_path / "o.npy", to="features", feet_threshold=0.002)
    assert e.value.reason == "bad_shape"
    with_nan = tmp_path / "nan.npy"
    arr = ref_joints[:10].copy()
    arr[7, 0, 0] = np.nan
    np.save(with_nan, arr)
    with pytest.raises(DataError, match=r"nan.npy: joints contain NaN/Inf at frames \[7\]") as e:
        convert_file(with_nan, tmp_path / "o.npy", to="features", feet_threshold=0.002)
    assert e.value.reason == "nan"
    short = tmp_path / "short.npy"
    np.save(short, ref_joints[:1])
    with pytest.raises(DataError, match="short.npy") as e:
        convert_file(short, tmp_path / "o.npy", to="features", feet_threshold=0.002)
    assert e.value.reason == "too_short"
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="obj.npy") as e:
        convert_file(pickled, tmp_path / "o.npy", to="joints")
    assert e.value.reason == "unreadable"
    with pytest.raises(DataError, match="missing.npy"):
        convert_file(tmp_path / "missing.npy", tmp_path / "o.npy", to="joints")
    assert cli_main(["joints", str(bad_shape), str(tmp_path / "o.npy")]) == 2
    assert not (tmp_path / "o.npy").exists()


def test_feet_threshold_default_is_humanml3d():
    # the library's default and the pipeline's one knob both hold HumanML3D's published value
    assert FEET_THRESHOLD == 0.002 == read_yaml(REPO / "params.yaml")["features"]["feet_threshold"]


def test_between_near_and_exactly_antiparallel():
    u = torch.tensor([[0.0, -1.0, 0.0]] * 3 + [[0.0, 0.0, 1.0]])
    d = 1e-4                                                       # 1e-4 rad off a half turn
    v = torch.tensor([[0.0, 1.0, 0.0], [math.sin(d), math.cos(d), 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, -1.0]])
    q = hml._between(u, v)                                          # float32
    assert torch.isfinite(q).all()
    torch.testing.assert_close(quat_rotate(q.double(), u.double()), v.double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(q[0], torch.tensor([0.0, 1.0, 0.0, 0.0]))   # u = -y: half turn about x
    torch.testing.assert_close(q[3], torch.tensor([0.0, 0.0, 1.0, 0.0]))   # a heading turns about +y
    torch.testing.assert_close(q[1], torch.tensor([math.sin(d / 2), 0.0, 0.0, math.cos(d / 2)]))


def test_exact_half_turn_heading():
    """A body facing exactly -Z (hips and shoulders exactly along x) gives the same features as
    facing +Z; the plain between-formula degenerates to a zero quaternion there."""
    t = 8
    poses = torch.zeros(t, 24, 3, dtype=torch.float64)
    poses[:, 1, 0] = torch.linspace(-0.4, 0.4, t)                 # legs only: hips stay symmetric
    poses[:, 5, 0] = torch.linspace(0.0, 0.6, t)
    transl = torch.stack((torch.zeros(t), torch.full((t,), 0.9), torch.linspace(0, 0.3, t)), -1).double()
    j = smpl_forward_kinematics(poses, default_rest_joints(torch.float64), transl)[:, :N_JOINTS]
    flipped = j * torch.tensor([-1.0, 1.0, -1.0], dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        base, turned = joints_to_features(j.to(dtype)), joints_to_features(flipped.to(dtype))
        assert torch.isfinite(turned).all()
        torch.testing.assert_close(turned, base, atol=1e-5, rtol=0)
