"""The generate stage on a fake cache with a tiny trained VAE and classifier, and its measuring pieces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from flowmimic.cache.catalog import usable_sequences
from flowmimic.evaluation.generated import WindowSet, content_kept, foot_skating, per_genre_rates
from flowmimic.features.humanml3d import joints_to_features
from flowmimic.evaluation.motion_metrics import MIN_WINDOWS_PER_GENRE
from flowmimic.taxonomy import N_GENRES

from fake_cache import make_fake_cache
from tiny_generation import demo_dance

WINDOW = 12


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    """A fake cache long enough for 12-frame windows, a 2-epoch VAE and a 2-epoch classifier on it."""
    from flowmimic.stages import classifier, latents, train, train_prior

    root = tmp_path_factory.mktemp("gen")
    params = make_fake_cache(root, frames=(26, 40), n_test=4, train=dict(seq_len=WINDOW), prior=dict(seq_len=WINDOW))
    params = params.model_copy(update={
        "evaluate": params.evaluate.model_copy(update=dict(window_frames=WINDOW)),
        "classifier": params.classifier.model_copy(update=dict(d_model=16, n_layers=1, n_heads=2, seq_len=WINDOW,
                                                               windows_per_sequence=2, epochs=2, device="cpu")),
        "generate": params.generate.model_copy(update=dict(samples_per_genre=2, label_windows_per_genre=2,
                                                           bootstrap=20, gif_frames=4, steps=3, fid_steps=[2, 3],
                                                           mvh_samples=4, inbetween_frames=4, context_frames=4))})
    train.main(params)
    classifier.main(params)
    latents.main(params)
    train_prior.main(params)
    return params


def _windows_of(params, split: str, domain: str) -> int:
    seqs = usable_sequences(params.cache.dir, params.split.dir, params.validate_.dir, split, domains=(domain,))
    return sum(s.frames // WINDOW for s in seqs if (domain == "mvh" or s.genre_id > 0))


def test_generate_stage_counts_and_writes_everything(trained):
    from flowmimic.stages import generate

    metrics = generate.main(trained)
    assert json.loads(Path(trained.generate.metrics).read_text()) == metrics
    n_transfer = N_GENRES * _windows_of(trained, "test", "mvh")
    assert metrics["transfer"]["classified_as_target"]["windows"] == n_transfer > 0
    assert metrics["real"]["classifier_accuracy"]["windows"] == _windows_of(trained, "test", "aist")
    assert metrics["samples"]["classified_as_genre"]["windows"] == N_GENRES * 2
    assert metrics["flow"]["classified_as_genre"]["windows"] == N_GENRES * 2
    for sampler in ("samples", "flow"):                          # side by side, the same measurements
        part = metrics[sampler]
        assert part["mvh"]["windows"] == 4 and {"fid_k", "div_k", "foot_skating", "acceleration_mps2",
                                                 "memorisation"} <= set(part["mvh"])
        assert part["div_k_relative_to_real"] == pytest.approx(part["div_k"] / metrics["real"]["div_k"], abs=1e-3)
        mem = part["memorisation"]
        assert mem["real_test_median_nn_distance"] == metrics["real"]["memorisation_median_nn_distance"]
        assert mem["passed"] == (mem["median_nn_distance"] >= mem["real_test_median_nn_distance"])
    assert set(metrics["flow"]["fid_k_at_steps"]) == {"2", "3"}
    assert metrics["flow"]["fid_k_at_steps"]["3"] == pytest.approx(metrics["flow"]["fid_k"], abs=1e-3)
    ib = metrics["inbetween"]
    assert ib["context_frames"] == 4 and ib["gap_frames"] == 4 and ib["windows"] > 0
    assert ib["root_end_error_m"] < 1e-4 and ib["heading_end_error_deg"] < 1e-2      # the bend meets B
    assert set(ib["targets"]) >= {"given_within_recon_plus_5mm", "gap_fid_k_below_linear"}
    # the figures README links to, by name
    assert {"given_frames_root_aligned_mm", "vae_reconstruction_root_aligned_mm", "join_acceleration_mps2",
            "gap_foot_skating", "gap_foot_skating_without_foot_lock", "linear_gap_foot_skating"} <= set(ib)
    assert set(metrics["comparison"]["targets"]) >= {"fid_k_at_most_half_of_vae_prior", "fid_k_at_most_3x_floor"}
    assert (Path(trained.generate.plots_dir) / "flow_samples.gif").stat().st_size > 0
    n_label = metrics["label_matters"]["source_windows"]
    assert metrics["label_matters"]["followed"]["windows"] == (N_GENRES - 1) * n_label > 0
    for part in (metrics["transfer"]["classified_as_target"], metrics["samples"]["classified_as_genre"],
                 metrics["label_matters"]["followed"], metrics["real"]["classifier_accuracy"]):
        lo, hi = part["ci95"]
        assert 0 <= lo <= part["rate"] <= hi <= 1
    for part in ("transfer", "samples", "floor"):
        assert {"fid_k", "fid_g", "div_k", "div_g", "fid_k_ci95", "fid_g_ci95"} <= set(metrics[part])
    assert metrics["transfer"]["root_trajectory_error_m"]["mean"] >= 0
    assert 0 <= metrics["transfer"]["foot_contact_agreement"]["mean"] <= 1
    confusion = json.loads((Path(trained.generate.plots_dir) / "transfer_confusion.json").read_text())
    assert len(confusion) == n_transfer
    assert (Path(trained.generate.plots_dir) / "transfer_grid.gif").stat().st_size > 0
    grid = np.load(trained.generate.grid)
    assert grid["joints"].shape == (1 + len(trained.generate.gif_genres), 4, 22, 3)
    assert list(grid["labels"]) == ["MVHumanNet source", "as Krump", "as Break", "as Waack"]


def test_generate_follows_the_label_it_decoded_with(trained, monkeypatch):
    """A judge that always answers genre 3: every rate is then known exactly from the labels used."""
    from flowmimic.model import classifier as clf
    from flowmimic.stages import generate

    real_load = clf.load_classifier

    def always_three(path, map_location="cpu"):
        model = real_load(path, map_location)
        monkeypatch.setattr(model, "predict", lambda x, mask=None, batch_size=256: torch.full((x.shape[0],), 3))
        return model

    monkeypatch.setattr(generate, "load_classifier", always_three)
    m = generate.main(trained)
    assert m["transfer"]["classified_as_target"]["rate"] == pytest.approx(0.1, abs=1e-4)
    assert m["samples"]["classified_as_genre"]["rate"] == pytest.approx(0.1, abs=1e-4)
    assert m["flow"]["classified_as_genre"]["rate"] == pytest.approx(0.1, abs=1e-4)
    n = m["label_matters"]["source_windows"]
    picked_genre_3 = m["label_matters"]["kept_original"] * (N_GENRES - 1) * n / (N_GENRES - 1)
    # Windows of genre 3 never get label 3 again; every other window gets it once in its 9 relabels.
    assert m["label_matters"]["followed"]["rate"] == pytest.approx((n - picked_genre_3) / ((N_GENRES - 1) * n), abs=1e-3)


@pytest.mark.parametrize("strength", [0.0, 0.7])
def test_stage_transfers_are_the_librarys_transfers(trained, strength):
    from flowmimic.generation.checkpoint import load_generation_model
    from flowmimic.generation.core import transfer
    from flowmimic.generation.flow import load_prior
    from flowmimic.generation.inputs import MotionInput
    from flowmimic.stages.generate import _transfers

    gm = load_generation_model(trained.train.model_path)
    prior = load_prior(trained.prior.model_path, gm.sha256)
    p = trained.generate.model_copy(update=dict(transfer_strength=strength))
    seq = usable_sequences(trained.cache.dir, trained.split.dir, trained.validate_.dir, "test", domains=("mvh",))[0]
    batched = _transfers(gm, prior, [seq], p)[0]                                 # (10, N, 263)
    feats = torch.from_numpy(np.asarray(seq.load(), dtype=np.float32))
    motion = MotionInput(source=str(seq.path), kind="features", domain="mvh", genre_id=0, fps=20.0,
                         features=feats, joints=None)
    plain = transfer(motion, gm, trained, 7, "aist", canonical=True)
    for g in (1, 7):
        one = transfer(motion, gm, trained, g, "aist", canonical=True, prior=prior, strength=strength,
                       steps=p.transfer_steps, solver=p.solver, prior_guidance=p.transfer_guidance, seed=p.seed)
        assert torch.allclose(batched[g - 1], torch.from_numpy(one.features), atol=1e-4)
    # through the prior, the transfer is another motion than the bare label swap
    assert np.allclose(one.features, plain.features, atol=1e-4) == (strength == 0.0)


def test_content_kept_is_zero_for_a_copy_and_measures_a_root_offset():
    feats = joints_to_features(demo_dance(3.2))[:60][None].repeat(2, 1, 1)          # (2, 60, 263)
    a = WindowSet.of(feats, 20.0)
    root, contacts = content_kept(a, a)
    assert np.allclose(root, 0) and np.allclose(contacts, 1)
    moved = feats.clone()
    moved[1, :, 2] += 0.01                       # 1 cm/frame more forward root velocity: drift t * 1 cm
    flipped = moved.clone()
    flipped[1, :, 259:] = 1 - flipped[1, :, 259:]
    root, contacts = content_kept(a, WindowSet.of(flipped, 20.0))
    assert root[0] == pytest.approx(0, abs=1e-6)
    assert root[1] == pytest.approx(0.01 * np.arange(60).mean(), rel=0.02)        # mean of 0, 1, ... 59 cm
    assert contacts.tolist() == [1.0, 0.0]


def test_per_genre_rates_only_above_the_minimum():
    genres = np.array([1] * MIN_WINDOWS_PER_GENRE + [2] * (MIN_WINDOWS_PER_GENRE - 1))
    hits = np.arange(len(genres)) % 2 == 0
    out = per_genre_rates(hits, genres)
    assert out["gBR"] == {"windows": MIN_WINDOWS_PER_GENRE, "rate": round(hits[:MIN_WINDOWS_PER_GENRE].mean(), 4)}
    assert out["gPO"] == {"windows": MIN_WINDOWS_PER_GENRE - 1} and "gLO" not in out


def test_foot_skating_pools_counts_over_windows():
    feats = joints_to_features(demo_dance(6.5))[:120].reshape(2, 60, 263)
    s = WindowSet.of(feats, 20.0)
    out = foot_skating(s, 20.0, 50, 0)
    from flowmimic.evaluation.motion_metrics import foot_skating_counts

    counts = [foot_skating_counts(j, 20.0) for j in s.joints]
    assert out["contact_steps"] == sum(c for _, c in counts) > 0
    assert out["rate"] == round(sum(k for k, _ in counts) / out["contact_steps"], 4)


def test_memorisation_flags_copies_of_training_windows():
    from flowmimic.evaluation.generated import memorisation, nearest_distances

    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(40, 6, 263, generator=g), torch.randn(30, 6, 263, generator=g)
    ident = lambda x: x   # noqa: E731
    copies = memorisation(train[:20] + 0.01, test, train, ident)
    assert not copies["passed"] and copies["share_below_real_5th_percentile"] == 1.0
    fresh = memorisation(torch.randn(30, 6, 263, generator=g), test, train, ident)
    assert fresh["passed"] or fresh["ratio_to_real"] > 0.97
    # the distance is the RMS over the continuous dims, computed independently here
    q, r = test[:3], train
    d = nearest_distances(q, r)
    expect = [min(float(((a - b) ** 2).mean().sqrt()) for b in r) for a in q]
    assert np.allclose(d, expect, atol=1e-9)
    # the decoder-matched reference: a "decoder" that shrinks every window towards 0 (the train data's
    # centre) puts unseen windows nearer to train; shrunk samples then compare with shrunk test windows
    from flowmimic.features import layout

    shrunk_test, samples = 0.6 * test, 0.6 * torch.randn(30, 6, 263, generator=g)
    both = memorisation(samples, test, train, ident, shrunk_test)

    def med(x: torch.Tensor, channels: slice) -> float:
        return float(np.median(nearest_distances(x[..., channels], train[..., channels])))

    for part, channels in ((both, slice(0, 67)), (both["all_continuous"], slice(0, 259))):
        assert part["real_test_median_nn_distance"] == pytest.approx(med(test, channels), abs=1e-4)
        assert part["reconstructed_test_median_nn_distance"] == pytest.approx(med(shrunk_test, channels), abs=1e-4)
        assert part["ratio_to_reconstructed"] == pytest.approx(med(samples, channels) / med(shrunk_test, channels),
                                                               abs=1e-3)
        assert part["ratio_to_real"] < part["ratio_to_reconstructed"]


def test_memorisation_searches_the_channels_that_make_the_motion():
    from flowmimic.evaluation.generated import memorisation
    from flowmimic.features import layout
    from flowmimic.features.humanml3d import features_to_joints

    g = torch.Generator().manual_seed(1)
    train, test = torch.randn(40, 6, 263, generator=g), torch.randn(30, 6, 263, generator=g)
    ident = lambda x: x   # noqa: E731
    # samples whose motion copies training windows, with rotation and velocity channels pulled to 0
    copies = train[:20].clone()
    copies[..., layout.ROT_6D.start:layout.CONTACTS.start] = 0.0
    assert torch.equal(features_to_joints(copies), features_to_joints(train[:20]))     # the same motion
    out = memorisation(copies, test, train, ident)
    assert not out["passed"] and out["median_nn_distance"] == 0.0 and out["share_below_real_5th_percentile"] == 1.0
    assert out["all_continuous"]["median_nn_distance"] > 0.5                # the redundant channels hide the copy
    assert layout.MOTION == slice(0, 67) and out["channels"].endswith("(layout.MOTION, 67)")
    # the ratio's bootstrap interval resamples both sets: it holds the point figure and has width
    fresh = memorisation(torch.randn(30, 6, 263, generator=g), test, train, ident, resamples=200, seed=3)
    lo, hi = fresh["ratio_to_real_ci95"]
    assert lo < fresh["ratio_to_real"] < hi and hi - lo > 0.01 and "ratio_to_real_ci95" not in out
