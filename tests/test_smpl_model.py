"""SMPL model files (official chumpy pickle, plain pickle, npz), rest joints, and the smplx bridge."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import pickle
import pickletools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch

from flowmimic.body.skeleton import default_rest_joints
from flowmimic.body.smpl_model import (
    SmplModel,
    find_model_file,
    load_model_cached,
    load_smpl_arrays,
    rest_joints_for,
)
from flowmimic.errors import DataError
from smpl_fixture import FORMATS, procedural_smpl_arrays, write_procedural_smpl

SUFFIX = {"pkl_chumpy": ".pkl", "pkl": ".pkl", "npz": ".npz"}


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("smpl")
    out = {}
    for fmt in FORMATS:
        (root / fmt).mkdir()
        out[fmt] = write_procedural_smpl(root / fmt / f"SMPL_MALE{SUFFIX[fmt]}", fmt, seed=0)
    return out


@pytest.fixture(scope="module")
def model(model_files: dict[str, Path]) -> SmplModel:
    return SmplModel.from_file(model_files["pkl_chumpy"])


def _smplx_own(path: Path, n: int) -> smplx.SMPL:
    """smplx reading the plain pickle with its own loader (the reference)."""
    return smplx.SMPL(str(path), batch_size=n, dtype=torch.float64, num_betas=10)


def _random_inputs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    poses = torch.randn(n, 72, generator=g, dtype=torch.float64) * 0.6
    betas = torch.randn(n, 10, generator=g, dtype=torch.float64) * 1.5
    transl = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return poses, betas, transl


# ----------------------------------------------------------------------------- files


def test_official_style_file_is_read_without_chumpy_or_scipy(model_files: dict[str, Path]) -> None:
    # chumpy is not installed; scipy is (the SMPL exporter's Slerp), but reading a model file never
    # imports it: a fresh interpreter reads the official-style file and has neither module loaded.
    assert importlib.util.find_spec("chumpy") is None, "chumpy must not be installed"
    code = ("import sys; from flowmimic.body.smpl_model import load_smpl_arrays; "
            "load_smpl_arrays(sys.argv[1]); "
            "loaded = [m for m in ('chumpy', 'scipy') if m in sys.modules]; "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code, str(model_files["pkl_chumpy"])], check=True)


def test_official_style_file_carries_chumpy_and_scipy_globals(model_files: dict[str, Path]) -> None:
    data = model_files["pkl_chumpy"].read_bytes()
    globals_ = {arg for op, arg, _ in pickletools.genops(io.BytesIO(data)) if op.name == "GLOBAL"}
    assert "chumpy.ch Ch" in globals_
    assert "scipy.sparse.csc csc_matrix" in globals_
    assert "numpy.core.multiarray _reconstruct" in globals_
    assert data[:2] == b"\x80\x02"  # protocol 2


def test_all_formats_load_identical_arrays(model_files: dict[str, Path]) -> None:
    ref = procedural_smpl_arrays(seed=0)
    loaded = {fmt: load_smpl_arrays(p) for fmt, p in model_files.items()}
    for fmt, arrays in loaded.items():
        assert set(arrays) == set(ref), fmt
        for key in ref:
            assert arrays[key].shape == ref[key].shape, (fmt, key)
            np.testing.assert_array_equal(arrays[key], ref[key].astype(arrays[key].dtype),
                                          err_msg=f"{fmt}:{key}")
    assert loaded["pkl_chumpy"]["v_template"].dtype == np.float64
    assert loaded["pkl_chumpy"]["f"].dtype == np.int64
    assert np.count_nonzero(loaded["pkl_chumpy"]["J_regressor"]) == 24 * 6  # sparse rows survive


def test_rest_joints_match_regressor(model: SmplModel) -> None:
    a = procedural_smpl_arrays(seed=0)
    rng = np.random.default_rng(1)
    betas = rng.normal(size=(2, 3, 10))
    expected = np.einsum("jv,...vc->...jc", a["J_regressor"],
                         a["v_template"] + np.einsum("vcb,...b->...vc", a["shapedirs"], betas))
    got = model.rest_joints(torch.from_numpy(betas))
    assert got.shape == (2, 3, 24, 3) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(model.rest_joints(None, dtype=torch.float64).numpy(),
                               a["J_regressor"] @ a["v_template"], atol=1e-12)
    # near the built-in skeleton the procedural model was made around (a sanity check of the fixture)
    assert (model.rest_joints() - default_rest_joints()).norm(dim=-1).max() < 0.06


def test_short_betas_are_zero_padded(model: SmplModel) -> None:
    b4 = torch.tensor([0.5, -1.0, 2.0, 0.3], dtype=torch.float64)
    b10 = torch.cat([b4, torch.zeros(6, dtype=torch.float64)])
    torch.testing.assert_close(model.rest_joints(b4), model.rest_joints(b10), rtol=0, atol=1e-14)
    assert not torch.allclose(model.rest_joints(b4), model.rest_joints(None, dtype=torch.float64))
    assert model.rest_joints(b4.float()).dtype == torch.float32
    with pytest.raises(ValueError, match="B <= 10"):
        model.rest_joints(torch.zeros(11))


def test_model_is_frozen(model: SmplModel) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.path = Path("elsewhere")  # type: ignore[misc]


# ----------------------------------------------------------------------------- against smplx


def test_joints_match_smplx_forward_pass(model: SmplModel, model_files: dict[str, Path]) -> None:
    n = 12
    poses, betas, transl = _random_inputs(n, seed=2)
    ref = _smplx_own(model_files["pkl"], n)(
        betas=betas, global_orient=poses[:, :3], body_pose=poses[:, 3:], transl=transl).joints
    assert ref.shape == (n, 45, 3)
    ours = model.joints(poses, transl, betas)
    assert ours.shape == (n, 24, 3) and ours.dtype == torch.float64
    assert (ours - ref[:, :24]).abs().max() < 1e-5
    # float32 inputs stay within 1e-5 m of the float64 reference too
    ours32 = model.joints(poses.float(), transl.float(), betas.float())
    assert ours32.dtype == torch.float32
    assert (ours32.double() - ref[:, :24]).abs().max() < 1e-5
    # and the test can fail: another shape gives other joints
    assert (model.joints(poses, transl, betas * 0) - ref[:, :24]).abs().max() > 1e-3


def test_joints_batched_over_sequences(model: SmplModel) -> None:
    poses, betas, transl = _random_inputs(6, seed=3)
    poses, transl = poses.reshape(2, 3, 72), transl.reshape(2, 3, 3)
    seq_betas = betas[:2]
    out = model.joints(poses, transl, seq_betas[:, None])
    assert out.shape == (2, 3, 24, 3)
    for i in range(2):
        torch.testing.assert_close(out[i], model.joints(poses[i], transl[i], seq_betas[i]))


def test_bridge_builds_the_same_smplx_model(model: SmplModel, model_files: dict[str, Path]) -> None:
    n = 4
    poses, betas, transl = _random_inputs(n, seed=4)
    kw = dict(betas=betas, global_orient=poses[:, :3], body_pose=poses[:, 3:], transl=transl)
    bridged = model.to_smplx(batch_size=n, dtype=torch.float64)
    assert isinstance(bridged, smplx.SMPL) and bridged.num_betas == 10
    out, ref = bridged(**kw), _smplx_own(model_files["pkl"], n)(**kw)
    torch.testing.assert_close(out.vertices, ref.vertices, rtol=0, atol=1e-10)
    torch.testing.assert_close(out.joints, ref.joints, rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------- errors


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def test_missing_key_names_file(tmp_path: Path) -> None:
    a = procedural_smpl_arrays(seed=0)
    del a["weights"]
    p = _write_npz(tmp_path / "SMPL_MALE.npz", a)
    with pytest.raises(DataError, match="missing key 'weights'") as e:
        load_smpl_arrays(p)
    assert e.value.path == str(p) and str(p) in str(e.value) and e.value.reason == "missing_key"


def test_wrong_shape_names_file(tmp_path: Path) -> None:
    a = procedural_smpl_arrays(seed=0)
    a["J_regressor"] = np.zeros((52, 6890))
    p = _write_npz(tmp_path / "smplh.npz", a)
    with pytest.raises(DataError, match=r"J_regressor.*\(52, 6890\).*SMPL-H") as e:
        load_smpl_arrays(p)
    assert e.value.path == str(p) and e.value.reason == "bad_shape"


@pytest.mark.parametrize("key,value,match", [
    ("v_template", np.full((6890, 3), np.nan), "NaN"),
    ("kintree_table", np.zeros((2, 24), dtype=np.int64), "kinematic tree"),
    ("f", np.full((13776, 3), 7000), "outside"),
])
def test_invalid_values_name_file(tmp_path: Path, key: str, value: np.ndarray, match: str) -> None:
    a = procedural_smpl_arrays(seed=0)
    a[key] = value
    p = _write_npz(tmp_path / "bad.npz", a)
    with pytest.raises(DataError, match=match) as e:
        load_smpl_arrays(p)
    assert e.value.path == str(p)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    for name in ("nope.pkl", "nope.npz"):
        with pytest.raises(DataError, match="not found") as e:
            load_smpl_arrays(tmp_path / name)
        assert e.value.path == str(tmp_path / name) and e.value.reason == "missing"
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="unreadable") as e:
        load_smpl_arrays(bad)
    assert e.value.path == str(bad)
    listy = tmp_path / "list.pkl"
    listy.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="expected a dict"):
        load_smpl_arrays(listy)


def test_find_model_file(tmp_path: Path, model_files: dict[str, Path]) -> None:
    assert find_model_file(model_files["pkl_chumpy"].parent, "male") == model_files["pkl_chumpy"]
    assert find_model_file(model_files["npz"].parent, "MALE") == model_files["npz"]
    both = tmp_path / "both" / "smpl"          # smplx's <model_path>/smpl/ layout; .npz preferred
    both.mkdir(parents=True)
    for suffix in (".pkl", ".npz"):
        (both / f"SMPL_NEUTRAL{suffix}").write_bytes(b"x")
    assert find_model_file(tmp_path / "both", "neutral") == both / "SMPL_NEUTRAL.npz"
    official = tmp_path / "official"
    official.mkdir()
    (official / "basicModel_f_lbs_10_207_0_v1.0.0.pkl").write_bytes(b"x")
    assert find_model_file(official, "female").name == "basicModel_f_lbs_10_207_0_v1.0.0.pkl"
    with pytest.raises(DataError, match="SMPL_FEMALE.pkl") as e:
        find_model_file(model_files["pkl"].parent, "female")
    assert e.value.path == str(model_files["pkl"].parent)
    with pytest.raises(DataError, match="folder not found") as e:
        find_model_file(tmp_path / "absent", "male")
    assert e.value.path == str(tmp_path / "absent")
    with pytest.raises(ValueError, match="gender"):
        find_model_file(tmp_path, "other")


def test_rest_joints_for(model_files: dict[str, Path], model: SmplModel) -> None:
    torch.testing.assert_close(rest_joints_for(None, "male"), default_rest_joints())
    b = torch.randn(5, 10, generator=torch.Generator().manual_seed(5))
    assert rest_joints_for(None, "male", b).shape == (5, 24, 3)   # no shape space: betas ignored
    folder = model_files["pkl_chumpy"].parent
    torch.testing.assert_close(rest_joints_for(folder, "male", b), model.rest_joints(b))
    r = rest_joints_for(folder, "male")
    assert r.shape == (24, 3) and r.dtype == torch.float32
    assert load_model_cached(folder, "male") is load_model_cached(folder, "male")
