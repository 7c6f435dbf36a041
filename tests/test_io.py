"""The restricted unpickler (what it refuses, what it rebuilds) and atomic writes."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from flowmimic.errors import DataError
from flowmimic.io import atomic_path, read_json, safe_load_pickle, save_npy, write_json, write_text
from hostile_pickles import HostileStorage, ShellCommand
from smpl_fixture import official_style_pickle_bytes


class _Call:
    def __init__(self, fn: object, *args: object) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple:
        return (self.fn, self.args)


def _write(path: Path, obj: object, protocol: int) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


# ----------------------------------------------------------------------------- refused


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_shell_command_is_refused_and_not_run(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    payload = {"poses": np.zeros((2, 72)), "evil": ShellCommand(marker)}
    p = _write(tmp_path / "motion.pkl", payload, protocol)
    with pytest.raises(DataError) as e:
        safe_load_pickle(p)
    assert e.value.path == str(p) and e.value.reason == "unsafe"
    assert f"'{os.system.__module__}.system'" in str(e.value)   # names the global (posix.system)
    assert not marker.exists()


def test_the_attack_is_live(tmp_path: Path) -> None:
    # Proof that the payload above does run under plain pickle, so the test above can fail.
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(ShellCommand(marker)))
    assert marker.exists()


@pytest.mark.parametrize("fn,args,name", [
    (builtins.eval, ("1+1",), "builtins.eval"),
    (builtins.getattr, (1, "real"), "builtins.getattr"),
    (subprocess.call, (["true"],), "subprocess.call"),
    (np.load, ("x.npy",), "numpy.load"),
])
def test_other_callables_are_refused(tmp_path: Path, fn: object, args: tuple, name: str) -> None:
    p = _write(tmp_path / "x.pkl", [_Call(fn, *args)], 4)
    with pytest.raises(DataError, match=f"forbidden global '{name}'"):
        safe_load_pickle(p)


def test_chumpy_object_without_array_is_refused(tmp_path: Path) -> None:
    class Ch:
        __module__, __qualname__ = "chumpy.ch", "Ch"

    p = tmp_path / "derived.pkl"
    obj = Ch()
    obj.__dict__.update({"a": 1})  # a derived chumpy expression: no 'x'
    p.write_bytes(official_style_pickle_bytes({"shapedirs": obj}))
    with pytest.raises(DataError, match="no array 'x'") as e:
        safe_load_pickle(p)
    assert e.value.path == str(p)


# ----------------------------------------------------------------------------- rebuilt


@pytest.mark.parametrize("protocol", [2, 4])
def test_mvhumannet_style_torch_dict_loads(tmp_path: Path, protocol: int) -> None:
    g = torch.Generator().manual_seed(0)
    frame = {
        "global_orient": torch.randn(1, 3, generator=g), "body_pose": torch.randn(1, 69, generator=g),
        "betas": torch.randn(1, 10, generator=g), "transl": torch.randn(1, 3, generator=g),
        "joints": torch.randn(1, 45, 3, generator=g, dtype=torch.float64),
        "scale": torch.nn.Parameter(torch.ones(1)), "expression": None,
    }
    out = safe_load_pickle(_write(tmp_path / "000000.pkl", frame, protocol))
    assert set(out) == set(frame) and out["expression"] is None
    for k in ("global_orient", "body_pose", "betas", "transl", "joints", "scale"):
        assert isinstance(out[k], torch.Tensor)
        assert out[k].dtype == frame[k].dtype
        torch.testing.assert_close(out[k].detach(), frame[k].detach(), rtol=0, atol=0)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_numpy_and_builtins_load(tmp_path: Path, protocol: int) -> None:
    rng = np.random.default_rng(0)
    obj = {
        "smpl_poses": rng.normal(size=(5, 72)).astype(np.float32),
        "smpl_trans": rng.normal(size=(5, 3)), "smpl_scaling": np.array([93.0]),
        "ints": np.arange(4, dtype=np.int16), "scalar": np.float64(2.5), "meta": OrderedDict(a=(1, "b")),
        "set": {1, 2}, "fortran": np.asfortranarray(rng.normal(size=(3, 4))), "none": None,
    }
    out = safe_load_pickle(_write(tmp_path / "m.pkl", obj, protocol))
    for k in ("smpl_poses", "smpl_trans", "smpl_scaling", "ints", "fortran"):
        assert out[k].dtype == obj[k].dtype
        np.testing.assert_array_equal(out[k], obj[k])
    assert out["scalar"] == 2.5 and out["meta"] == obj["meta"] and out["set"] == {1, 2}
    assert out["none"] is None


def test_sparse_stand_ins_densify(tmp_path: Path) -> None:
    class Csr:
        __module__, __qualname__ = "scipy.sparse.csr", "csr_matrix"

    dense = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 3.0]])
    m = Csr()
    m.__dict__.update({"_shape": (2, 3), "format": "csr", "data": np.array([2.0, 1.0, 3.0]),
                       "indices": np.array([1, 0, 2], dtype=np.int32),
                       "indptr": np.array([0, 1, 3], dtype=np.int32)})
    no_format = Csr()  # newer scipy keeps `format` on the class, not in the state
    no_format.__dict__.update({k: v for k, v in m.__dict__.items() if k != "format"})
    p = tmp_path / "csr.pkl"
    # protocol 2 rebuilds these with NEWOBJ (no __init__), as in the official SMPL files
    p.write_bytes(official_style_pickle_bytes({"m": m, "no_format": no_format}))
    out = safe_load_pickle(p)
    np.testing.assert_array_equal(out["m"], dense)
    np.testing.assert_array_equal(out["no_format"], dense)


# ----------------------------------------------------------------------------- broken files


def test_truncated_and_missing_files(tmp_path: Path) -> None:
    data = pickle.dumps({"a": np.arange(100.0)}, protocol=2)
    for name, blob in (("truncated.pkl", data[: len(data) // 2]), ("empty.pkl", b""),
                       ("garbage.pkl", b"\x80\x02not a pickle")):
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(DataError, match="unreadable pickle") as e:
            safe_load_pickle(p)
        assert e.value.path == str(p) and e.value.reason == "unreadable"
    with pytest.raises(DataError, match="not found") as e:
        safe_load_pickle(tmp_path / "absent.pkl")
    assert e.value.reason == "missing"


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_write_leaves_nothing_when_the_body_raises(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []      # no temp file left behind either


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(TypeError):
        write_json(target, {"v": object()})           # not JSON-serialisable: fails mid-way
    assert read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_writes_succeed(tmp_path: Path) -> None:
    write_text(tmp_path / "a.txt", "hello\n")
    save_npy(tmp_path / "a.npy", np.arange(3.0))
    assert (tmp_path / "a.txt").read_text() == "hello\n"
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.arange(3.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "a.txt"]


# ----------------------------------------------------------------------------- hostile storages, our bugs


@pytest.mark.parametrize("zipfile", [False, True])   # tensors pickle their storage in the legacy format
def test_hostile_torch_storage_is_unsafe_not_unreadable(tmp_path: Path, zipfile: bool) -> None:
    marker = tmp_path / "pwned"
    p = _write(tmp_path / "0000.pkl", {"joints": HostileStorage(marker, zipfile)}, 4)
    with pytest.raises(DataError) as e:
        safe_load_pickle(p)
    assert e.value.reason == "unsafe" and e.value.path == str(p)
    assert "not plain data" in str(e.value) and "system" in str(e.value)
    assert "weights_only" not in str(e.value)           # never torch's advice to load it unsafely
    assert not marker.exists()


def test_a_bug_in_our_allow_list_is_not_reported_as_a_bad_file(tmp_path: Path, monkeypatch) -> None:
    import flowmimic.io as fio

    p = _write(tmp_path / "m.pkl", {"a": np.arange(3.0)}, 4)
    assert safe_load_pickle(p)["a"].tolist() == [0.0, 1.0, 2.0]

    def broken_core():
        raise AttributeError("module 'numpy' has no attribute '_core'")     # e.g. a numpy API change

    monkeypatch.setattr(fio, "_np_core", broken_core)
    with pytest.raises(Exception) as e:
        safe_load_pickle(p)
    assert not isinstance(e.value, DataError)            # a bug surfaces; the cache counts it internal_error
    assert isinstance(e.value.__cause__, AttributeError)


def test_a_bug_while_loading_a_checkpoint_is_not_an_unreadable_file(tmp_path: Path, monkeypatch) -> None:
    from flowmimic.training import checkpoint

    p = tmp_path / "last.pt"
    for blob in (b"", b"garbage", b"PK\x03\x04 truncated zip"):
        p.write_bytes(blob)
        with pytest.raises(DataError, match="unreadable checkpoint"):
            checkpoint.load_checkpoint(p)

    def buggy_load(*args, **kwargs):
        raise NameError("name 'map_locaton' is not defined")

    monkeypatch.setattr(checkpoint.torch, "load", buggy_load)
    with pytest.raises(NameError):
        checkpoint.load_checkpoint(p)


def test_inconsistent_sparse_matrix_is_a_data_error(tmp_path: Path) -> None:
    class Csr:
        __module__, __qualname__ = "scipy.sparse.csr", "csr_matrix"

    m = Csr()
    m.__dict__.update({"_shape": (2, 3), "format": "csr", "data": np.array([2.0, 1.0, 3.0]),
                       "indices": np.array([1, 0, 7], dtype=np.int32),          # column 7 of 3
                       "indptr": np.array([0, 1, 3], dtype=np.int32)})
    p = tmp_path / "csr.pkl"
    p.write_bytes(official_style_pickle_bytes({"m": m}))
    with pytest.raises(DataError, match="inconsistent") as e:
        safe_load_pickle(p)
    assert e.value.reason == "invalid"


@pytest.mark.filterwarnings("ignore::UserWarning")       # torch notes the odd protocol numbers it meets
@pytest.mark.parametrize("seed", [0, 1])
def test_corrupted_files_raise_only_data_errors(tmp_path: Path, seed: int) -> None:
    """Random byte flips and truncations of real-format pickles: every outcome is a load or a DataError."""
    rng = np.random.default_rng(seed)
    frame = {"transl": None, "global_orient": torch.randn(1, 1, 3, 3), "joints": torch.randn(1, 45, 3),
             "faces": np.arange(30, dtype=np.uint32).reshape(10, 3)}
    motion = {"smpl_poses": rng.random((20, 72)).astype(np.float32), "smpl_trans": rng.random((20, 3)),
              "smpl_scaling": np.array([94.0]), "smpl_loss": 1.0}
    blobs = [pickle.dumps(frame, protocol=4), pickle.dumps(motion, protocol=2), pickle.dumps(motion, protocol=0)]
    reasons = set()
    p = tmp_path / "x.pkl"
    for _ in range(300):
        b = bytearray(blobs[rng.integers(len(blobs))])
        if rng.random() < 0.2:
            b = b[:rng.integers(len(b))]
        else:
            for i in rng.integers(len(b), size=rng.integers(1, 4)):
                b[i] = rng.integers(256)
        p.write_bytes(bytes(b))
        try:
            safe_load_pickle(p)
        except DataError as e:
            reasons.add(e.reason)
    assert "unreadable" in reasons                       # the corruption did bite


def test_open_errors_are_unreadable(tmp_path: Path) -> None:
    loop = tmp_path / "loop.pkl"
    loop.symlink_to(loop.name)
    (tmp_path / "folder.pkl").mkdir()
    for p in (loop, tmp_path / "folder.pkl"):
        with pytest.raises(DataError, match="cannot open") as e:
            safe_load_pickle(p)
        assert e.value.reason == "unreadable" and e.value.path == str(p)


def test_temp_files_of_killed_writes_are_found_and_removed(tmp_path: Path) -> None:
    from flowmimic.io import is_temp_file, remove_temp_files

    with atomic_path(tmp_path / "aist" / "x.npy") as tmp:
        assert is_temp_file(tmp)
        left = tmp.with_name(tmp.name.replace(".tmp", ".left.tmp"))
        tmp.rename(left)                                  # what a SIGKILL leaves
        tmp.write_bytes(b"done")
    keep = [tmp_path / "aist" / "x.npy", tmp_path / "notes.tmp", tmp_path / ".hidden"]
    for k in keep[1:]:
        k.write_text("mine")
    assert remove_temp_files(tmp_path) == 1 and not left.exists()
    assert all(k.exists() for k in keep) and remove_temp_files(tmp_path / "absent") == 0
