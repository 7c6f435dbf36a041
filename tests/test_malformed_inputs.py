"""Every kind of malformed input, fed through the real `flowmimic split / cache / validate` commands.

One mixed raw tree holds the tiny tree's valid sequences and one broken input of each kind below
(each with its own id). The pipeline must not crash, must cache every valid sequence, and must
count every broken input with its reason in `metrics/data.json` and in the `bad_*.txt` lists:
the cache stage's skips under `skip_reasons`, the inputs the split stage drops (before any split
list names them) under `drop_reasons`.

A bug of ours while processing one input (not a bad file) is counted as `internal_error`, the
other inputs are still cached, the index is still written, and the command fails at its end.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from flowmimic import cli
from flowmimic.cache.catalog import bad_list_path, read_index
from flowmimic.io import read_lines

from hostile_pickles import HostileStorage, ShellCommand
from raw_fixtures import AIST_NAMES, MVH_IDS, make_mvh_sequence, make_tiny_tree, write_mvh_frame, \
    write_params_file

LOOSE = {"cache.max_skip_fraction": 1.0, "validate.max_bad_fraction": 1.0, "cache.workers": 2}


# ----------------------------------------------------------------------------- AIST++ kinds


def _motion(frames: int = 120) -> dict:
    return {"smpl_poses": np.zeros((frames, 72), np.float32), "smpl_trans": np.zeros((frames, 3), np.float32),
            "smpl_scaling": np.array([94.0], np.float32), "smpl_loss": 1.0}


def _pickle_motion(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data, protocol=4))


def _with(**changes) -> object:
    def write(path: Path) -> None:
        data = _motion()
        data.update(changes)
        _pickle_motion(path, data)
    return write


def _without(key: str):
    def write(path: Path) -> None:
        data = _motion()
        del data[key]
        _pickle_motion(path, data)
    return write


def _nan_pose(path: Path) -> None:
    data = _motion()
    data["smpl_poses"][7, 4] = np.nan
    _pickle_motion(path, data)


def _truncated(path: Path) -> None:
    _pickle_motion(path, _motion())
    path.write_bytes(path.read_bytes()[:100])


def _symlink_loop(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(path.name, path)                     # motions/<name>.pkl -> motions/<name>.pkl


def _directory(path: Path) -> None:
    path.mkdir(parents=True)


def _forbidden_global(path: Path) -> None:
    data = _motion()
    data["smpl_loss"] = ShellCommand(path.parent / "pwned")
    _pickle_motion(path, data)


def _hostile_storage(path: Path) -> None:
    data = _motion()
    data["smpl_loss"] = HostileStorage(path.parent / "pwned")
    _pickle_motion(path, data)


# (kind, writer of motions/<id>.pkl or None for no file, reason); ids are made unique below
AIST_KINDS = [
    ("truncated", _truncated, "unreadable"),
    ("empty_file", lambda p: (p.parent.mkdir(parents=True, exist_ok=True), p.write_bytes(b"")), "unreadable"),
    ("directory", _directory, "unreadable"),
    ("symlink_loop", _symlink_loop, "unreadable"),
    ("missing_file", None, "missing"),
    ("not_a_dict", lambda p: _pickle_motion(p, [1, 2, 3]), "invalid"),
    ("missing_key", _without("smpl_trans"), "missing_key"),
    ("poses_wrong_width", _with(smpl_poses=np.zeros((120, 70), np.float32)), "bad_shape"),
    ("poses_list_wrong_shape", _with(smpl_poses=[[0.0] * 5] * 120), "bad_shape"),
    ("poses_ragged_list", _with(smpl_poses=[[0.0] * 72, [0.0] * 3]), "bad_shape"),
    ("poses_none", _with(smpl_poses=None), "bad_type"),
    ("poses_string", _with(smpl_poses="not an array"), "bad_type"),
    ("trans_wrong_length", _with(smpl_trans=np.zeros((50, 3), np.float32)), "bad_shape"),
    ("scaling_none", _with(smpl_scaling=None), "bad_type"),
    ("zero_frames", _with(smpl_poses=np.zeros((0, 72), np.float32), smpl_trans=np.zeros((0, 3), np.float32)),
     "empty"),
    ("too_short", lambda p: _pickle_motion(p, _motion(frames=18)), "too_short"),
    ("nan_pose", _nan_pose, "nan"),
    ("zero_scaling", _with(smpl_scaling=np.array([0.0], np.float32)), "invalid"),
    ("forbidden_global", _forbidden_global, "unsafe"),
    ("hostile_torch_storage", _hostile_storage, "unsafe"),
]


# ----------------------------------------------------------------------------- MVHumanNet kinds


def _frame(seq: Path, k: int) -> Path:
    return seq / "smpl_param" / f"{5 * k:04d}.pkl"


def _sequence(write_broken):
    """A valid 2 s sequence (10 frame files) whose frame 3 `write_broken(path)` then breaks."""
    def build(seq: Path, params) -> None:
        make_mvh_sequence(seq.parent.parent, f"{seq.parent.name}/{seq.name}", seconds=2.0, params=params)
        write_broken(_frame(seq, 3))
    return build


def _frame_with(**changes):
    def write(path: Path) -> None:
        write_mvh_frame(path, torch.zeros(45, 3))
        data = pickle.loads(path.read_bytes())
        data.update(changes)
        path.write_bytes(pickle.dumps(data, protocol=4))
    return write


def _frame_pickle(obj: object):
    return lambda path: path.write_bytes(pickle.dumps(obj, protocol=4))


def _frame_symlink_loop(path: Path) -> None:
    path.unlink()
    os.symlink(path.name, path)


def _frame_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _drop_frames(*ks: int):
    def build(seq: Path, params) -> None:
        make_mvh_sequence(seq.parent.parent, f"{seq.parent.name}/{seq.name}", seconds=4.0, skip=ks, params=params)
    return build


def _irregular(seq: Path, params) -> None:
    make_mvh_sequence(seq.parent.parent, f"{seq.parent.name}/{seq.name}", seconds=2.0, params=params)
    _frame(seq, 4).rename(seq / "smpl_param" / "0022.pkl")      # stride 5, then a step of 2


def _one_frame(seq: Path, params) -> None:
    write_mvh_frame(_frame(seq, 0), torch.zeros(45, 3))


def _no_frames(seq: Path, params) -> None:
    (seq / "smpl_param").mkdir(parents=True)


def _frame_no_number(seq: Path, params) -> None:
    _sequence(lambda p: None)(seq, params)
    write_mvh_frame(seq / "smpl_param" / "frame.pkl", torch.zeros(45, 3))


def _duplicate_numbers(seq: Path, params) -> None:
    _sequence(lambda p: None)(seq, params)
    write_mvh_frame(seq / "smpl_param" / "15.pkl", torch.zeros(45, 3))      # 0015.pkl exists too


# split-stage drops: the folder never reaches a split list
def _smpl_param_is_file(seq: Path, params) -> None:
    seq.mkdir(parents=True)
    (seq / "smpl_param").write_bytes(b"")


def _sequence_symlink_loop(seq: Path, params) -> None:
    seq.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(seq.name, seq)


def _no_smpl_param(seq: Path, params) -> None:
    (seq / "images").mkdir(parents=True)


# (kind, folder name, builder(sequence folder, params), reason, stage that counts it)
MVH_KINDS = [
    ("frame_nan", _sequence(lambda p: write_mvh_frame(p, torch.full((45, 3), float("nan")))), "nan", "cache"),
    ("frame_wrong_shape", _sequence(lambda p: write_mvh_frame(p, torch.zeros(10, 3))), "bad_shape", "cache"),
    ("frame_joints_list_wrong_shape", _sequence(_frame_with(joints=[[0.0, 0.0]] * 45)), "bad_shape", "cache"),
    ("frame_joints_none", _sequence(_frame_with(joints=None)), "bad_type", "cache"),
    ("frame_joints_string", _sequence(_frame_with(joints="joints")), "bad_type", "cache"),
    ("frame_missing_joints", _sequence(_frame_pickle({"betas": torch.zeros(1, 10)})), "missing_key", "cache"),
    ("frame_not_a_dict", _sequence(_frame_pickle([1, 2])), "invalid", "cache"),
    ("frame_truncated", _sequence(_frame_truncated), "unreadable", "cache"),
    ("frame_forbidden_global", _sequence(lambda p: _frame_pickle({"joints": ShellCommand(p.parent / "pwned")})(p)),
     "unsafe", "cache"),
    ("frame_symlink_loop", _sequence(_frame_symlink_loop), "unreadable", "cache"),
    ("long_gap", _drop_frames(*range(5, 12)), "gap", "cache"),
    ("irregular", _irregular, "irregular", "cache"),
    ("one_frame", _one_frame, "too_short", "cache"),
    ("no_frames", _no_frames, "empty", "cache"),
    ("frame_no_number", _frame_no_number, "bad_name", "cache"),
    ("duplicate_frame_numbers", _duplicate_numbers, "invalid", "cache"),
    ("smpl_param_is_file", _smpl_param_is_file, "not_a_folder", "split"),
    ("sequence_symlink_loop", _sequence_symlink_loop, "unreadable", "split"),
    ("no_smpl_param", _no_smpl_param, "missing", "split"),
    ("performer_regex_rejects", _sequence(lambda p: None), "bad_name", "split"),
]


def _aist_id(k: int) -> str:
    return f"gHO_sFM_cAll_d{50 + k:02d}_mHO{k % 6}_ch{k:02d}"


def _mvh_id(k: int, kind: str) -> str:
    return f"part_09/_{kind}" if kind == "performer_regex_rejects" else f"part_09/{900000 + k}_01"


CASES = ([("aist", kind, _aist_id(k), reason, "cache") for k, (kind, _, reason) in enumerate(AIST_KINDS)]
         + [("aist", "bad_name", "my_dance", "bad_name", "cache")]
         + [("mvh", kind, _mvh_id(k, kind), reason, stage) for k, (kind, _, reason, stage) in enumerate(MVH_KINDS)])


def _build_mixed_tree(root: Path) -> Path:
    """The tiny tree plus one broken input per kind; returns the params file."""
    params = make_tiny_tree(root, **LOOSE)
    aist_root, mvh_root = Path(params.data.aist_root), Path(params.data.mvh_root)
    for k, (_, write, _) in enumerate(AIST_KINDS):
        if write is not None:
            write(aist_root / "motions" / f"{_aist_id(k)}.pkl")
    _pickle_motion(aist_root / "motions" / "my_dance.pkl", _motion())
    broken = [_aist_id(k) for k in range(len(AIST_KINDS))] + ["my_dance"]
    with open(aist_root / "splits" / "pose_train.txt", "a") as f:
        f.write("".join(f"{name}\n" for name in broken))
    for k, (kind, build, _, _) in enumerate(MVH_KINDS):
        build(mvh_root / _mvh_id(k, kind), params)
    return write_params_file(root, **LOOSE)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """The mixed tree after `flowmimic split`, `cache` and `validate`: (params file, exit codes, data.json)."""
    root = tmp_path_factory.mktemp("mixed")
    params_file = _build_mixed_tree(root)
    codes = [cli.main([stage, "--params", str(params_file)]) for stage in ("split", "cache", "validate")]
    data = json.loads((root / "metrics" / "data.json").read_text())
    return root, codes, data


def test_the_stages_succeed_and_every_valid_sequence_is_cached(mixed):
    root, codes, data = mixed
    assert codes == [0, 0, 0]
    rows = {(r["domain"], r["id"]): r for r in read_index(root / "cache")}
    valid = [("aist", n) for n in AIST_NAMES[:4]] + [("mvh", s) for s in MVH_IDS]     # AIST_NAMES[4] is ignored
    for key in valid:
        assert rows[key]["status"] == "ok" and (root / "cache" / rows[key]["path"]).is_file()
    assert data["aist"]["usable"] == 4 and data["mvh"]["usable"] == 5 and data["aist"]["ignored"] == 1
    assert not list(root.rglob("pwned"))                     # no payload ran


@pytest.mark.parametrize("domain, kind, seq_id, reason, stage", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_each_malformed_input_is_counted_with_its_reason(mixed, domain, kind, seq_id, reason, stage):
    root, _, data = mixed
    bad = {line.split("\t")[0]: line.split("\t") for line in read_lines(bad_list_path(root / "validate", domain))}
    assert seq_id in bad, f"{kind}: {seq_id} is not in bad_{domain}.txt"
    assert bad[seq_id][1] == reason, f"{kind}: {bad[seq_id]}"
    assert bad[seq_id][2], "the bad list gives a message"
    counts = data[domain]["skip_reasons" if stage == "cache" else "drop_reasons"]
    assert counts.get(reason, 0) >= 1
    rows = {(r["domain"], r["id"]): r for r in read_index(root / "cache")}
    if stage == "cache":
        assert rows[(domain, seq_id)]["status"] == "skipped" and rows[(domain, seq_id)]["reason"] == reason
    else:
        assert (domain, seq_id) not in rows


def test_the_report_counts_add_up(mixed):
    _, _, data = mixed
    for domain in ("aist", "mvh"):
        mine = [c for c in CASES if c[0] == domain]
        assert data[domain]["skip_reasons"] == dict(Counter(c[3] for c in mine if c[4] == "cache"))
        assert data[domain]["drop_reasons"] == dict(Counter(c[3] for c in mine if c[4] == "split"))
        assert data[domain]["skipped"] == sum(1 for c in mine if c[4] == "cache")
        assert data[domain]["dropped"] == sum(1 for c in mine if c[4] == "split")
    n_bad = len(CASES)
    assert data["total"]["bad_fraction"] == pytest.approx(n_bad / (n_bad + 9), abs=1e-4)


def test_a_bug_of_ours_is_an_internal_error_not_a_bad_file(tmp_path, monkeypatch, caplog):
    """A non-DataError in one job: counted `internal_error` with its traceback, others cached, exit non-zero."""
    from flowmimic.sources import mvhumannet

    params = make_tiny_tree(tmp_path, **{"cache.workers": 1})
    params_file = write_params_file(tmp_path, **{"cache.workers": 1})
    real = mvhumannet.load_frame_joints

    def buggy(path):
        if "100002_01" in str(path):
            return {}["no such key"]                         # a bug, on one sequence only
        return real(path)

    monkeypatch.setattr(mvhumannet, "load_frame_joints", buggy)
    assert cli.main(["split", "--params", str(params_file)]) == 0
    with caplog.at_level(logging.INFO):
        code = cli.main(["cache", "--params", str(params_file)])
    assert code != 0
    rows = {(r["domain"], r["id"]): r for r in read_index(params.cache.dir)}
    bug = rows[("mvh", "part_01/100002_01")]
    assert bug["status"] == "error" and bug["reason"] == "internal_error" and "KeyError" in bug["message"]
    assert sum(r["status"] == "ok" for r in rows.values()) == len(rows) - 1 == 8
    logged = caplog.text
    assert "Traceback" in logged and "buggy" in logged and "internal error" in logged.lower()
    assert "1 internal error" in logged.lower() or "internal_error" in logged
    assert cli.main(["validate", "--params", str(params_file)]) != 0
    data = json.loads(Path(params.validate_.metrics).read_text())
    assert data["mvh"]["error_reasons"] == {"internal_error": 1} and data["mvh"]["usable"] == 4
    monkeypatch.setattr(mvhumannet, "load_frame_joints", real)       # the bug fixed: the job is redone
    assert cli.main(["cache", "--params", str(params_file)]) == 0
    assert all(r["status"] == "ok" for r in read_index(params.cache.dir))
