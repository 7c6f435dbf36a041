"""In-betweening and continuation: the bend that meets B, windowed continuation, the commands and their bad input."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from raw_fixtures import tiny_params
from tiny_generation import WINDOW, demo_dance, save_tiny_prior, train_tiny_checkpoint
from flowmimic.body.skeleton import PELVIS
from flowmimic.cli import main as cli_main
from flowmimic.errors import ConfigError
from flowmimic.features.humanml3d import features_to_joints, joints_to_features
from flowmimic.generation.flow import load_prior
from flowmimic.generation.placement import place
from flowmimic.generation.inbetween import (_turn, context_frames, continue_latents, heading, inbetween_latents,
                                            place_between, wrap, yaw_fit)
from flowmimic.generation.checkpoint import file_sha256


@pytest.fixture(scope="module")
def dance():
    torch.set_num_threads(1)
    return demo_dance(12.0, "gLO", 3)


@pytest.fixture(scope="module")
def models(tmp_path_factory, dance):
    root = tmp_path_factory.mktemp("models")
    vae = train_tiny_checkpoint(root / "vae.pt", [joints_to_features(dance)], [0], [3], steps=30)
    other = train_tiny_checkpoint(root / "other.pt", [joints_to_features(dance)], [0], [3], steps=31)
    return vae, save_tiny_prior(root / "prior.pt", vae), save_tiny_prior(root / "prior_other.pt", other)


def test_heading_is_the_facing_yaw_and_turn_adds_to_it(dance):
    j = features_to_joints(joints_to_features(dance))           # canonical: frame 0 faces +Z
    assert abs(float(heading(j[0]))) < 0.05
    turned = _turn(j[:5], torch.full((5,), 0.7), j[0, PELVIS])
    assert torch.allclose(wrap(heading(turned) - heading(j[:5])), torch.full((5,), 0.7), atol=1e-5)


def test_place_between_bends_the_gap_onto_b_and_keeps_a():
    j = features_to_joints(joints_to_features(demo_dance(6.0, "gHO", 1)))
    c, gap = 10, 12
    pivot = j[c - 1, PELVIS]
    # the "decoded" window: A's frames exact, then a drift growing linearly over the gap to 25 degrees
    # and 0.45 m, and B's frames carried along rigidly
    n = 2 * c + gap
    r = ((torch.arange(n) - (c - 1)) / (gap + 1)).clamp(0, 1)
    off = _turn(j[:n], r * math.radians(25.0), pivot) + r[:, None, None] * torch.tensor([0.4, 0.0, -0.2])
    placed = place_between(off, j[:c], j[c + gap:], c, gap)
    out, b0 = placed.joints, c + gap
    assert placed.end_error_before_m > 0.3 and placed.heading_error_before_deg > 20
    assert torch.allclose(out[:c], j[:c], atol=2e-3)                          # A's context stays where A is
    assert torch.allclose(out[b0:], j[b0:n], atol=2e-3)                       # B's context lands on B
    # at the joins the bend adds far less velocity than a linear blend would (the smootherstep is flat
    # there): at A's side the output moves as the drifting input, at B's side as it turned by the full correction
    vel = out[1:, PELVIS] - out[:-1, PELVIS]
    linear_step = placed.end_error_before_m / (gap + 1)
    assert float((vel[c - 1] - (off[c, PELVIS] - off[c - 1, PELVIS])).norm()) < 0.2 * linear_step
    full = _turn(off[b0 - 1:b0 + 1], torch.full((2,), -math.radians(25.0)), pivot)   # the full turn, both frames
    assert float((vel[b0 - 1] - (full[1, PELVIS] - full[0, PELVIS])).norm()) < 0.2 * linear_step
    # a decoded window facing 10 degrees off A's heading: the fit over A's frames turns it back, which
    # anchoring on A's first frame alone (`place`) cannot
    turned = _turn(off, torch.full((n,), math.radians(10.0)), torch.zeros(3))
    again = place_between(turned, j[:c], j[c + gap:], c, gap).joints
    assert torch.allclose(again[:c], j[:c], atol=2e-3)
    assert not torch.allclose(place(turned, j[:c])[:c], j[:c], atol=0.02)


def test_yaw_fit_recovers_a_known_turn_and_shift():
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(7, 22, 3, generator=g, dtype=torch.float64)
    pivot = torch.tensor([0.3, 0.0, -0.2], dtype=torch.float64)
    moved = _turn(pts, torch.full((7,), 0.6, dtype=torch.float64), pivot) + torch.tensor([1.0, 0.5, 2.0],
                                                                                       dtype=torch.float64)
    angle, centre, shift = yaw_fit(pts, moved)
    assert float(angle) == pytest.approx(0.6, abs=1e-9) and float(shift[1]) == 0.0
    fitted = _turn(pts, angle.expand(7), centre) + shift
    assert torch.allclose(fitted[..., [0, 2]], moved[..., [0, 2]], atol=1e-9)      # heights are left alone
    noisy = moved + 0.01 * torch.randn(moved.shape, generator=g, dtype=torch.float64)
    assert float(yaw_fit(pts, noisy)[0]) == pytest.approx(0.6, abs=0.01)


def test_context_fits_the_window_and_long_gaps_are_refused():
    assert context_frames(60, 20) == 20 and context_frames(60, 20, (5, 40)) == 5 and context_frames(16, 13) == 1
    for bad in (15, 0):
        with pytest.raises(ConfigError, match="does not fit"):
            context_frames(16, bad)


def test_inbetween_and_continuation_latents_keep_the_known_frames(models):
    vae, prior_path, _ = models
    prior = load_prior(prior_path, file_sha256(vae))
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(2, 4, 8, generator=g), torch.randn(2, 4, 8, generator=g)
    z = inbetween_latents(prior, za, zb, 6, 0, [3, 5], steps=2, solver="midpoint", guidance=1.5)
    assert z.shape == (2, 14, 8) and torch.equal(z[:, :4], za) and torch.equal(z[:, 10:], zb)
    assert not torch.allclose(z[:, 4:10], torch.zeros(2, 6, 8))
    zp = torch.randn(1, 5, 8, generator=g)
    long = continue_latents(prior, zp, 30, 0, 3, steps=2, solver="euler", guidance=1.0)   # window 16: 3 windows
    assert long.shape == (1, 35, 8) and torch.equal(long[:, :5], zp) and torch.isfinite(long).all()


def _one_error(caplog) -> str:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    return errors[0]


@pytest.fixture
def env(tmp_path, models, dance):
    from fake_cache import write_params

    vae, prior, _ = models
    pfile = write_params(tiny_params(tmp_path), tmp_path / "params.yaml")
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, dance[:60].numpy())
    np.save(b, (dance[100:160] + torch.tensor([1.0, 0.0, 0.5])).numpy())
    return a, b, ["--checkpoint", str(vae), "--prior", str(prior), "--params", str(pfile), "--steps", "2"]


@pytest.mark.parametrize("ext", [".npy", ".npz", ".bvh"])
def test_commands_write_every_kind(tmp_path, env, ext):
    a, b, common = env
    out = tmp_path / f"ib{ext}"
    assert cli_main(["inbetween", str(a), str(b), str(out), "--seconds", "0.3", *common]) == 0
    cont = tmp_path / f"c{ext}"
    assert cli_main(["continue", str(a), str(cont), "--seconds", "2", "--genre", "Krump", *common]) == 0
    if ext == ".npy":
        j = np.load(out)
        c = (WINDOW - 6) // 2
        assert j.shape == (2 * c + 6, 22, 3)
        # the last frame pair is B's first known frames: the bend put the pelvis on B's
        assert np.abs(j[c + 6, PELVIS, [0, 2]] - np.load(b)[0, PELVIS, [0, 2]]).max() < 1e-3
        assert np.load(cont).shape[0] == WINDOW // 2 + 40                   # half the prior's window + 2 s
    elif ext == ".npz":
        with np.load(cont) as z:
            assert int(z["genre"]) == 8 and str(z["domain"]) == "aist"
    else:
        assert out.read_text().startswith("HIERARCHY")


def test_foot_lock_is_the_footlock_module_on_the_placed_joints(tmp_path, env):
    from flowmimic.features.layout import CONTACTS
    from flowmimic.generation.footlock import lock_feet

    a, b, common = env
    runs = {}
    for flag in ("--foot-lock", "--no-foot-lock"):
        out = tmp_path / f"ib{flag}.npz"
        assert cli_main(["inbetween", str(a), str(b), str(out), "--seconds", "0.3", flag, *common]) == 0
        with np.load(out) as z:
            runs[flag] = torch.from_numpy(z["joints"]), torch.from_numpy(z["features"])
    (locked, feats), (plain, feats_plain) = runs["--foot-lock"], runs["--no-foot-lock"]
    assert torch.equal(feats, feats_plain)
    assert torch.allclose(locked, lock_feet(plain, feats[:, CONTACTS]), atol=1e-6)
    assert not torch.allclose(locked, plain, atol=1e-4)                # the tiny model plants feet: it did something


def test_sample_command_draws_from_the_flow_prior(tmp_path, env, models, caplog):
    from flowmimic.generation.checkpoint import load_generation_model
    from flowmimic.generation.core import decode_latents
    from flowmimic.generation.flow import sample_latents

    _, _, common = env
    vae, prior_path, _ = models
    out = tmp_path / "s.npz"
    assert cli_main(["sample", str(out), "--genre", "Krump", "--seconds", "1", "-n", "2", "--seed", "4",
                     "--prior-guidance", "1.5", "--temperature", "1.2", *common]) == 0   # --sampler flow: default
    # the same draw, composed here from the prior's sampler and the decoder
    gm, prior = load_generation_model(vae), load_prior(prior_path)
    z = sample_latents(prior, 2, 20, 0, 8, steps=2, solver="midpoint", guidance=1.5, temperature=1.2,
                       generator=torch.Generator().manual_seed(4))
    expect = decode_latents(gm, z, "aist", 8)
    with np.load(out.with_name("s_001.npz")) as f:
        assert str(f["source"]) == "flow prior" and int(f["genre"]) == 8
        np.testing.assert_allclose(f["features"], expect[1].numpy(), atol=1e-5)
    assert cli_main(["sample", str(tmp_path / "t.npy"), "--genre", "Krump", "--seconds", "1", "--temperature", "0",
                     *common]) == 2
    assert "temperature must be > 0" in _one_error(caplog) and not (tmp_path / "t.npy").exists()
    caplog.clear()
    missing = tmp_path / "none.pt"
    assert cli_main(["sample", str(tmp_path / "m.npy"), "--genre", "Krump", "--seconds", "1", *common,
                     "--prior", str(missing)]) == 2
    assert _one_error(caplog).startswith(f"{missing}: flow prior checkpoint not found")
    assert not (tmp_path / "m.npy").exists()


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, env, models, dance, caplog):
    a, b, common = env
    out = tmp_path / "o.npy"
    cases = []
    cases.append((["continue", str(a), str(out), "--seconds", "1", "--genre", "Polka", *common], "unknown genre 'Polka'"))
    short = tmp_path / "short.npy"
    np.save(short, dance[:WINDOW].numpy())                                  # WINDOW joints: WINDOW - 1 feature frames
    cases.append((["continue", str(short), str(out), "--seconds", "1", "--genre", "gKR", *common],
                  "shorter than one window"))
    nan = tmp_path / "nan.npy"
    arr = dance[:60].numpy().copy()
    arr[7, 3, 1] = np.nan
    np.save(nan, arr)
    cases.append((["continue", str(nan), str(out), "--seconds", "1", "--genre", "gKR", *common], "NaN"))
    other = [*common[:2], "--prior", str(models[2]), *common[4:]]
    cases.append((["inbetween", str(a), str(b), str(out), "--seconds", "0.3", *other], "another VAE"))
    cases.append((["inbetween", str(a), str(b), str(out), "--seconds", "5", *common], "does not fit"))
    cases.append((["inbetween", str(a), str(tmp_path / "none.npy"), str(out), "--seconds", "0.3", *common],
                  "file not found"))
    for argv, needle in cases:
        caplog.clear()
        assert cli_main(argv) == 2, argv
        assert needle in _one_error(caplog), (needle, _one_error(caplog))
        assert not out.exists() and not list(tmp_path.glob(".o.npy*"))
