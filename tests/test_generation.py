"""reconstruct / transfer / sample: inputs of every kind, blending without seams, put-back, outputs, errors."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from fake_cache import make_fake_cache
from raw_fixtures import make_aist_sequence, make_mvh_sequence, tiny_params
from tiny_generation import FPS, WINDOW, demo_dance, train_tiny_checkpoint
from flowmimic.body.rotation import quat_about_y, quat_rotate
from flowmimic.body.skeleton import PELVIS
from flowmimic.cli import main as cli_main
from flowmimic.errors import ConfigError, DataError
from flowmimic.evaluation.metrics import joint_errors
from flowmimic.features.humanml3d import features_to_joints, joints_to_features
from flowmimic.features.normalize import Normalizer
from flowmimic.generation import core, load_generation_model, read_input, reconstruct, sample, transfer
from flowmimic.generation import windows as W
from flowmimic.generation.outputs import write_motions
from flowmimic.generation.placement import put_back
from flowmimic.taxonomy import parse_genre
from flowmimic.training.checkpoint import load_checkpoint

DANCES = (("gBR", 0), ("gKR", 1), ("gPO", 2))


@pytest.fixture(scope="module")
def dances():
    torch.set_num_threads(1)
    return [demo_dance(30.0, g, s) for g, s in DANCES]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, dances):
    """A tiny VAE overfitted to three 30-s demo dances (window 16), saved like the train stage saves."""
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    feats = [joints_to_features(j) for j in dances]
    return train_tiny_checkpoint(path, feats, [0, 0, 0], [parse_genre(g) for g, _ in DANCES], steps=200)


@pytest.fixture(scope="module")
def gm(ckpt):
    return load_generation_model(ckpt)


@pytest.fixture
def params(tmp_path):
    return tiny_params(tmp_path)


def _turned(joints: torch.Tensor, degrees: float, offset=(2.0, 0.3, -1.5)) -> torch.Tensor:
    q = quat_about_y(torch.tensor(np.radians(degrees), dtype=joints.dtype))
    return quat_rotate(q.expand(*joints.shape[:-1], 4), joints) + joints.new_tensor(offset)


# ----------------------------------------------------------------------------- checkpoint carries its stats


def test_train_stage_embeds_the_normaliser_and_generation_uses_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                  # dvclive looks for a repo around the working directory
    params = make_fake_cache(tmp_path / "run", train=dict(epochs=1))
    from flowmimic.stages import train as train_stage

    train_stage.main(params)
    stats = Normalizer.from_file(params.stats.path)
    for path in (params.train.model_path, params.train.last_path):
        saved = load_checkpoint(path)["normalizer"]
        np.testing.assert_array_equal(saved["mean"].numpy(), stats.mean)
        np.testing.assert_array_equal(saved["std"].numpy(), stats.std)
    Path(params.stats.path).unlink()             # generation must not need the stats file
    gm = load_generation_model(params.train.model_path)
    np.testing.assert_array_equal(gm.normalizer.std, stats.std)
    assert gm.window == params.train.seq_len


def test_checkpoint_without_normaliser_is_one_clear_error(tmp_path, ckpt, caplog):
    old = load_checkpoint(ckpt)
    del old["normalizer"]
    old_path = tmp_path / "old.pt"
    torch.save(old, old_path)
    with pytest.raises(DataError, match="old.pt: checkpoint carries no normaliser stats"):
        load_generation_model(old_path)
    out = tmp_path / "o.npy"
    assert cli_main(["sample", str(out), "--genre", "gBR", "--seconds", "1", "--checkpoint", str(old_path)]) == 2
    assert _one_error(caplog).startswith(f"{old_path}: checkpoint carries no normaliser")
    assert not out.exists()


# ----------------------------------------------------------------------------- windows and blending


def test_windows_cover_the_sequence_and_blend_convexly():
    assert W.window_starts(10, 16, 8) == [0]
    assert W.window_starts(40, 16, 8) == [0, 8, 16, 24]
    assert W.window_starts(41, 16, 8) == [0, 8, 16, 24, 25]          # the last window flush with the end
    w = W.taper(16, 8)
    assert w[0] == 0 and w[-1] == 0 and w[7] == 1 and w[8] == 1
    torch.testing.assert_close(w[8:] + w[:8], torch.ones(8))          # neighbours' ramps add up to 1
    assert W.taper(16, 8, rise=False)[0] == 1 and W.taper(16, 8, fall=False)[-1] == 1
    # Windows cut from one signal blend back into exactly that signal, whatever the overlap.
    x = torch.randn(2, 61, 5)
    for overlap in (0, 3, 8):
        starts = W.window_starts(61, 16, overlap)
        torch.testing.assert_close(W.overlap_add(W.split_windows(x, starts, 16), starts, 61, overlap), x)


def _seam_frames(n: int, starts: list[int], window: int) -> list[int]:
    """Frames whose acceleration stencil (t-1, t, t+1) crosses a window edge (a window's first or last frame)."""
    seams = set()
    for s in starts:
        for edge in (s, s + window):
            if 0 < edge < n:
                seams |= {edge - 1, edge}
    return sorted(seams)


def test_no_seams_on_a_long_demo_sequence(gm, dances, monkeypatch):
    """Acceleration error at window edges, blended, is no worse than inside windows.

    "Inside windows" is measured on the same model run window by window with no overlap (a hard
    cut), at the frames whose whole acceleration stencil lies in one window, per position in the
    window; the blended seams must not exceed the worst of those positions. The hard cut itself
    must fail the same check, so the test can tell a seam.
    """
    per_position = torch.zeros(WINDOW)
    count = torch.zeros(WINDOW)
    seam_err = {}
    for mode, overlap in (("cut", 0), ("blend", W.overlap_of(WINDOW))):
        monkeypatch.setattr(core, "overlap_of", lambda _: overlap)
        errs = []
        for (g, _), joints in zip(DANCES, dances):
            motion = read_input_from_joints(joints, parse_genre(g))
            out = core.decode_latents(gm, core.encode_input(gm, motion), "aist", motion.genre_id)[0]
            n = out.shape[0]
            assert n == joints.shape[0] - 1 and n > 30 * WINDOW
            acc = joint_errors(out[None], motion.features[None])["accl"][0]
            starts = W.window_starts(n, WINDOW, overlap)
            seams = _seam_frames(n, starts, WINDOW)
            errs.append(acc[seams])
            if mode == "cut":
                for t in range(1, n - 1):
                    if t not in seams:
                        local = t - max(s for s in starts if s <= t)
                        per_position[local] += acc[t]
                        count[local] += 1
        seam_err[mode] = torch.cat(errs).mean()
    inside_worst = (per_position[count > 0] / count[count > 0]).max()
    assert seam_err["blend"] <= inside_worst, (seam_err, inside_worst)
    assert seam_err["cut"] > inside_worst                               # a hard cut shows


def read_input_from_joints(joints: torch.Tensor, genre_id: int = 0):
    from flowmimic.generation.inputs import MotionInput

    return MotionInput("demo", "joints", "aist", genre_id, float(FPS), joints_to_features(joints), joints)


# ----------------------------------------------------------------------------- put back


def test_put_back_restores_position_heading_floor_and_frame_count(dances):
    joints = _turned(dances[0][:80], 130.0)
    canonical = features_to_joints(joints_to_features(joints))                        # a perfect "model"
    assert canonical.shape[0] == 79
    placed = put_back(canonical, joints)
    assert placed.shape == joints.shape
    torch.testing.assert_close(placed[0, PELVIS, [0, 2]], joints[0, PELVIS, [0, 2]])
    torch.testing.assert_close(placed[..., 1].amin(), joints[..., 1].amin(), atol=0.02, rtol=0)
    err = (placed - joints).norm(dim=-1).mean()
    assert err < 0.05 < (canonical - joints[:79]).norm(dim=-1).mean()      # 5 cm: the target skeleton's bones
    # The extra frame continues the last velocity.
    torch.testing.assert_close(placed[-1] - placed[-2], placed[-2] - placed[-3])


# ----------------------------------------------------------------------------- every IN kind


def test_reconstruct_each_input_kind(tmp_path, gm, params, dances):
    j20 = _turned(dances[0][:60], 40.0)
    np.save(tmp_path / "j20.npy", j20.numpy())
    np.save(tmp_path / "j40.npy", dances[0][:121].numpy())                  # 3 s at 40 fps
    np.save(tmp_path / "f.npy", joints_to_features(j20).numpy())
    make_aist_sequence(tmp_path / "aist", "gKR_sBM_cAll_d01_mKR0_ch01", seconds=2.0, params=params)
    make_mvh_sequence(tmp_path / "mvh", "part_01/100001_01", seconds=4.0, params=params)
    cases = {  # input, kwargs -> (kind, domain, genre, frames)
        "j20.npy": ({}, ("joints", "aist", 0, 60)),
        "j40.npy": ({"fps": 40}, ("joints", "aist", 0, 61)),
        "f.npy": ({"domain": "mvh"}, ("features", "mvh", 0, 59)),
        "aist/motions/gKR_sBM_cAll_d01_mKR0_ch01.pkl": ({}, ("aist", "aist", 8, 40)),
        "mvh/part_01/100001_01": ({}, ("mvh", "mvh", 0, None)),
    }
    for rel, (kw, (kind, domain, genre, frames)) in cases.items():
        motion = read_input(tmp_path / rel, params, **kw)
        assert (motion.kind, motion.domain, motion.genre_id) == (kind, domain, genre), rel
        out = reconstruct(motion, gm, params)
        n = frames or motion.joints.shape[0]
        assert out.joints.shape == (n, 22, 3) and out.joints.dtype == np.float32, rel
        assert out.features.shape == (motion.features.shape[0], 263) and np.isfinite(out.joints).all()
        assert (out.domain, out.genre_id, out.canonical) == (domain, genre, kind == "features")
        if motion.joints is not None:          # put back: starts where the input starts
            np.testing.assert_allclose(out.joints[0, PELVIS, [0, 2]], motion.joints[0, PELVIS, [0, 2]].numpy(), atol=1e-5)
    canonical = reconstruct(tmp_path / "j20.npy", gm, params, canonical=True)
    assert canonical.joints.shape == (59, 22, 3) and canonical.canonical
    np.testing.assert_allclose(canonical.joints[0, PELVIS, [0, 2]], 0.0, atol=1e-6)


def test_transfer_decodes_with_the_target_labels(gm, params, dances):
    motion = read_input_from_joints(dances[0][:200], parse_genre("gBR"))
    rec = reconstruct(motion, gm, params)
    krump = transfer(motion, gm, params, "Krump")
    assert (krump.genre_id, krump.domain) == (8, "aist") and krump.joints.shape == rec.joints.shape
    assert np.abs(krump.features - rec.features).mean() > 1e-3          # the label reached the decoder
    again = transfer(motion, gm, params, 8)
    np.testing.assert_array_equal(again.features, krump.features)      # deterministic (posterior means)
    assert transfer(motion, gm, params, "gKR", "mvh").domain == "mvh"


def test_sample_is_seeded_and_sized(gm, params):
    a = sample(gm, params, "gPO", seconds=2.0, n=3, seed=7)
    b = sample(gm, params, "gPO", seconds=2.0, n=3, seed=7)
    c = sample(gm, params, "gPO", seconds=2.0, n=1, seed=8)
    assert len(a) == 3 and all(m.joints.shape == (40, 22, 3) and m.canonical for m in a)
    assert all(np.array_equal(x.joints, y.joints) for x, y in zip(a, b))
    assert not np.allclose(a[0].joints, c[0].joints) and not np.allclose(a[0].joints, a[1].joints)
    assert (a[0].genre_id, a[0].domain, a[0].source, a[0].fps) == (2, "aist", "prior", 20.0)
    long = sample(gm, params, 2, seconds=6.0)[0]                        # longer than the window: blended
    assert long.joints.shape == (120, 22, 3) and np.isfinite(long.joints).all()
    with pytest.raises(ConfigError, match="seconds"):
        sample(gm, params, 2, seconds=0.01)


# ----------------------------------------------------------------------------- every OUT kind, by CLI


def _one_error(caplog) -> str:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    return errors[0]


@pytest.fixture
def cli_env(tmp_path, ckpt, params, dances):
    from fake_cache import write_params

    pfile = write_params(params, tmp_path / "params.yaml")
    src = tmp_path / "in.npy"
    np.save(src, _turned(dances[1][:50], -60.0).numpy())
    return src, ["--checkpoint", str(ckpt), "--params", str(pfile)]


def test_cli_writes_npy_npz_gif_and_numbered_samples(tmp_path, cli_env, ckpt):
    src, common = cli_env
    out = tmp_path / "out"
    assert cli_main(["reconstruct", str(src), str(out / "r.npy"), *common]) == 0
    assert np.load(out / "r.npy").shape == (50, 22, 3)
    # --strength 0: a bare decoder label swap, no flow prior needed (the prior path is tested in test_generate)
    assert cli_main(["transfer", str(src), str(out / "t.npz"), "--genre", "waack", "--canonical", "--strength", "0",
                     "--no-foot-lock", *common]) == 0                   # joints exactly from the features
    with np.load(out / "t.npz") as z:
        assert z["joints"].shape == (49, 22, 3) and z["features"].shape == (49, 263)
        assert (float(z["fps"]), str(z["domain"]), int(z["genre"]), str(z["genre_name"])) == (20.0, "aist", 7, "Waack")
        assert str(z["source"]) == str(src) and bool(z["canonical"])
        assert str(z["checkpoint_sha256"]) == hashlib.sha256(Path(ckpt).read_bytes()).hexdigest()
        np.testing.assert_allclose(z["joints"], features_to_joints(z["features"]).numpy(), atol=1e-5)
    assert cli_main(["sample", str(out / "s.gif"), "--genre", "3", "--seconds", "1.5", "-n", "2", "--sampler",
                     "vae_prior", *common]) == 0
    from PIL import Image

    for i in range(2):
        with Image.open(out / f"s_{i:03d}.gif") as im:
            assert im.format == "GIF" and im.n_frames == 30
    assert not (out / "s.gif").exists()
    assert sorted(p.name for p in out.iterdir()) == ["r.npy", "s_000.gif", "s_001.gif", "t.npz"]   # no temp files


@pytest.mark.parametrize("ext", [".bvh", ".pkl"])
def test_cli_exports_bvh_and_smpl_pkl(tmp_path, cli_env, ext):
    pytest.importorskip("flowmimic.export", reason="flowmimic.export (BVH/SMPL writers) is not in this build")
    src, common = cli_env
    out = tmp_path / f"o{ext}"
    assert cli_main(["reconstruct", str(src), str(out), *common]) == 0
    if ext == ".bvh":
        assert out.read_text().startswith("HIERARCHY")
    else:
        from flowmimic.io import safe_load_pickle

        assert safe_load_pickle(out)["smpl_poses"].shape[1] == 72


# ----------------------------------------------------------------------------- bad input (item 7)


def test_transfer_strength_and_prior_errors_are_one_line(tmp_path, cli_env, caplog):
    src, common = cli_env
    assert cli_main(["transfer", str(src), str(tmp_path / "o.npy"), "--genre", "gKR", "--strength", "1.5", *common]) == 2
    # the default strength goes through the flow prior: a missing one is one line naming it
    missing = tmp_path / "no_prior.pt"
    assert cli_main(["transfer", str(src), str(tmp_path / "o.npy"), "--genre", "gKR", "--prior", str(missing),
                     *common]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and all("\n" not in e for e in errors), errors
    assert "--strength must be in [0, 1]" in errors[0]
    assert str(missing) in errors[1] and "train_prior" in errors[1] and not (tmp_path / "o.npy").exists()


def test_unknown_genre_lists_the_valid_names(tmp_path, cli_env, caplog):
    src, common = cli_env
    assert cli_main(["transfer", str(src), str(tmp_path / "o.npy"), "--genre", "Polka", *common]) == 2
    msg = _one_error(caplog)
    assert "unknown genre 'Polka'" in msg and all(n in msg for n in ("gBR", "Break", "Krump", "Ballet Jazz", "10"))
    assert not (tmp_path / "o.npy").exists()
    assert [parse_genre(x) for x in ("gkr", "KRUMP", "8", " Middle Hip-hop ")] == [8, 8, 8, 4]
    with pytest.raises(ValueError):
        parse_genre(0)


@pytest.mark.parametrize("case", ["shape", "nan", "short", "garbage_ckpt", "incompatible_ckpt", "missing_ckpt",
                                  "out_under_file", "out_is_dir", "out_ext", "missing_in"])
def test_bad_input_is_one_line_naming_the_file(tmp_path, cli_env, ckpt, case, caplog):
    src, common = cli_env
    out = tmp_path / "res" / "o.npy"
    args = ["reconstruct", str(src), str(out), *common]
    bad = tmp_path / "bad.npy"
    named, expect = src, ""
    if case == "shape":
        np.save(bad, np.zeros((30, 24, 3), np.float32))
        named, expect, args[1] = bad, "expected joints (T, 22, 3) or 263-D features", str(bad)
    elif case == "nan":
        arr = np.load(src)
        arr[4, 3, 1] = np.nan
        np.save(bad, arr)
        named, expect, args[1] = bad, "joints contain NaN/Inf at frames [4]", str(bad)
    elif case == "short":
        np.save(bad, np.load(src)[:1])
        named, expect, args[1] = bad, "needs at least 2 frames", str(bad)
    elif case == "garbage_ckpt":
        named = tmp_path / "garbage.pt"
        named.write_bytes(b"not a checkpoint at all")
        expect, args[args.index(str(ckpt))] = "unreadable checkpoint (UnpicklingError: Unsupported operand", str(named)
    elif case == "incompatible_ckpt":
        c = load_checkpoint(ckpt)
        c["config"] = {**c["config"], "d_model": 32}
        named = tmp_path / "other.pt"
        torch.save(c, named)
        expect, args[args.index(str(ckpt))] = "checkpoint does not rebuild the model (RuntimeError: Error(s)", str(named)
    elif case == "missing_ckpt":
        named = tmp_path / "none.pt"
        expect, args[args.index(str(ckpt))] = "checkpoint not found", str(named)
    elif case == "out_under_file":
        (tmp_path / "res").write_text("a file, not a folder")
        named, expect = out, "cannot write here (" + str(tmp_path / "res") + " is a file, not a folder)"
    elif case == "out_is_dir":
        out.mkdir(parents=True)
        named, expect = out, "is a folder"
    elif case == "out_ext":
        out = tmp_path / "res" / "o.txt"
        named, expect, args[2] = out, "unsupported output type '.txt'", str(out)
    elif case == "missing_in":
        named, expect, args[1] = tmp_path / "nothing.npy", "file not found", str(tmp_path / "nothing.npy")
    assert cli_main(args) == 2
    msg = _one_error(caplog)
    assert msg.startswith(f"{named}: ") and expect in msg, msg
    assert not out.is_file()
    if (tmp_path / "res").is_dir():
        assert [p for p in (tmp_path / "res").iterdir() if p.is_file()] == []


def test_failed_write_leaves_no_partial_file(tmp_path, gm, params, monkeypatch):
    motions = sample(gm, params, 1, seconds=1.0)

    def dying_savez(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", dying_savez)
    with pytest.raises(DataError, match="o.npz: cannot write \\(No space left on device\\)"):
        write_motions(tmp_path / "o.npz", motions, params)
    assert list(tmp_path.iterdir()) == []


def test_sample_and_transfer_lock_feet_as_the_footlock_module_does(tmp_path, cli_env):
    from flowmimic.features.layout import CONTACTS
    from flowmimic.generation.footlock import lock_feet

    src, common = cli_env
    for cmd in (["sample", "--genre", "3", "--seconds", "3", "--sampler", "vae_prior"],
                ["transfer", str(src), "--genre", "waack", "--strength", "0", "--canonical"]):
        runs = {}
        for flag in ("--foot-lock", "--no-foot-lock"):
            out = tmp_path / f"{cmd[0]}{flag}.npz"
            args = [cmd[0], *cmd[1:2], str(out), *cmd[2:]] if cmd[0] == "transfer" else [cmd[0], str(out), *cmd[1:]]
            assert cli_main([*args, flag, *common]) == 0
            with np.load(out) as z:
                runs[flag] = torch.from_numpy(z["joints"]), torch.from_numpy(z["features"])
        (locked, feats), (plain, _) = runs["--foot-lock"], runs["--no-foot-lock"]
        assert torch.allclose(locked, lock_feet(plain, feats[:, CONTACTS]), atol=1e-6)
        assert not torch.allclose(locked, plain, atol=1e-4)             # the tiny model plants feet: it acted
