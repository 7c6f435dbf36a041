"""Evaluation: metrics on hand-built cases, fixed windows, bootstrap intervals, and the evaluate stage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from flowmimic.body.rotation import axis_angle_to_matrix
from flowmimic.demo.clips import dance_clips
from flowmimic.evaluation.metrics import joint_errors, joint_errors_from_joints, procrustes_align
from flowmimic.evaluation.reconstruct import evaluation_keys, reconstruct
from flowmimic.evaluation.tally import COL, COLUMNS, bootstrap_sums, figures, summarize
from flowmimic.features import layout
from flowmimic.features.humanml3d import joints_to_features
from flowmimic.model.losses import LossWeights, vae_losses
from flowmimic.model.vae import N_DOMAINS, N_GENRES, MotionVAE, VAEConfig
from flowmimic.stages import cache, evaluate, split, stats, train, validate
from flowmimic.training.loop import validate as validate_losses

from fake_cache import TINY_TRAIN
from raw_fixtures import AIST_NAMES, make_aist_sequence, make_tiny_tree

WEIGHTS = LossWeights(w_recon=1.0, w_contact=0.5, w_smooth=0.5, w_style=0.1, w_joints=0.0, kl_weight=1e-4, kl_warmup_steps=0)


def _features(n=41):
    joints = dance_clips(1, n, fps=20.0).joints[0, :, :22].double()
    return joints_to_features(joints)[None]                                              # (1, n-1, 263)


# ----------------------------------------------------------------------------- per-frame metrics


def test_joint_errors_of_a_uniform_shift():
    target = _features()
    pred = target.clone()
    pred[..., layout.ROOT_Y] += 0.1
    pred[..., layout.RIC.start + 1:layout.RIC.stop:3] += 0.1                     # every joint 10 cm higher
    e = joint_errors(pred, target)
    assert torch.allclose(e["mpjpe"], torch.full_like(e["mpjpe"], 0.1), atol=1e-6)
    for k in ("mpjpe_root", "pa_mpjpe", "accl"):                                 # a translation only
        assert e[k].abs().max() < 1e-6, k


def test_identical_inputs_give_zero_errors():
    target = _features()
    for k, v in joint_errors(target, target).items():
        assert v.shape == target.shape[:2] and v.abs().max() < 1e-9, k


def test_procrustes_recovers_a_known_rotation_scale_and_translation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, 22, 3, generator=g, dtype=torch.float64)               # (B, T, J, 3)
    rot = axis_angle_to_matrix(torch.randn(4, 5, 3, generator=g, dtype=torch.float64))
    scale = 0.5 + torch.rand(4, 5, 1, 1, generator=g, dtype=torch.float64)
    shift = torch.randn(4, 5, 1, 3, generator=g, dtype=torch.float64)
    y = scale * x @ rot.transpose(-1, -2) + shift
    assert torch.allclose(procrustes_align(x, y), y, atol=1e-10)
    e = joint_errors_from_joints(x, y)
    assert e["pa_mpjpe"].abs().max() < 1e-10 and e["mpjpe"].min() > 0.1
    # A mirror image is not a rotation: Procrustes must not undo it.
    mirrored = y * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert joint_errors_from_joints(x, mirrored)["pa_mpjpe"].min() > 0.1


def test_pa_mpjpe_keeps_a_change_of_pose():
    g = torch.Generator().manual_seed(1)
    target = torch.randn(1, 3, 22, 3, generator=g, dtype=torch.float64)
    pred = target.clone()
    pred[..., 20, :] += torch.tensor([0.0, 0.0, 0.22], dtype=torch.float64)      # one wrist 22 cm off
    e = joint_errors_from_joints(pred, target)
    assert torch.allclose(e["mpjpe"], torch.full((1, 3), 0.01, dtype=torch.float64))
    assert (e["pa_mpjpe"] > 0.005).all()                                         # a pose error survives alignment
    # Procrustes minimises the squared distances: never worse than leaving the prediction alone.
    sq = lambda a: (a - target).square().sum((-1, -2))
    assert (sq(procrustes_align(pred, target)) < sq(pred)).all()


def test_accl_is_the_second_difference_error_on_interior_frames():
    target = torch.zeros(1, 5, 22, 3, dtype=torch.float64)
    pred = target.clone()
    pred[0, 2, :, 0] = 0.004                                                     # one frame 4 mm off
    accl = joint_errors_from_joints(pred, target)["accl"][0]
    # a_t = x_{t-1} - 2 x_t + x_{t+1}: 4, -8, 4 mm on frames 1..3; nothing on the end frames.
    assert torch.allclose(accl, torch.tensor([0.0, 0.004, 0.008, 0.004, 0.0], dtype=torch.float64))


# ----------------------------------------------------------------------------- windows and chunking


def test_evaluation_windows_are_fixed_and_full():
    keys, too_short = evaluation_keys([130, 59, 60], 60)
    assert keys == [(0, 0), (0, 60), (2, 0)] and too_short == [1]


def test_reconstruct_in_model_windows_joins_the_chunks():
    cfg = VAEConfig(d_in=layout.DIM, d_model=16, n_layers=1, n_heads=2, mlp_ratio=2.0, dropout=0.0, d_z=8,
                    n_domains=N_DOMAINS, n_genres=N_GENRES, style_head=True)
    model = MotionVAE(cfg).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    x = torch.randn(2, 20, layout.DIM, generator=g)
    mask = torch.ones(2, 20, dtype=torch.bool)
    domain, genre = torch.tensor([0, 1]), torch.tensor([3, 0])
    with torch.no_grad():
        whole = reconstruct(model, x, mask, domain, genre, chunk=32)
        chunked = reconstruct(model, x, mask, domain, genre, chunk=8)              # 8 + 8 + 4 frames
        parts = [model(x[:, s:s + 8], mask[:, s:s + 8], domain, genre, sample=False) for s in (0, 8, 16)]
    assert torch.equal(whole.recon, model(x, mask, domain, genre, sample=False).recon)
    assert torch.allclose(chunked.recon, torch.cat([p.recon for p in parts], 1))
    assert torch.allclose(chunked.style_logits, torch.stack([p.style_logits for p in parts]).mean(0))
    assert not torch.allclose(chunked.recon, whole.recon)                      # chunks see less context


# ----------------------------------------------------------------------------- tally and bootstrap


def _rows(mpjpe_m: list[float], frames: int = 10, style: list[float | None] | None = None) -> np.ndarray:
    rows = np.zeros((len(mpjpe_m), len(COLUMNS)))
    for i, e in enumerate(mpjpe_m):
        rows[i, COL["windows"]], rows[i, COL["frames"]], rows[i, COL["accl_frames"]] = 1, frames, frames - 2
        rows[i, COL["mpjpe"]] = e * frames
        if style and style[i] is not None:
            rows[i, COL["style_loss"]], rows[i, COL["style_windows"]], rows[i, COL["style_correct"]] = style[i], 1, 1
    return rows


def test_bootstrap_interval_of_a_known_mean():
    # 100 sequences, half with 0 and half with 1 m error: the mean's bootstrap distribution is
    # Binomial(100, 1/2) / 100, whose central 95 % is 0.5 +- 1.96 x 0.05 (normal approximation).
    rows = _rows([0.0] * 50 + [1.0] * 50)
    s = summarize(rows, [0] * 100, WEIGHTS, resamples=4000, rng=np.random.default_rng(0))
    assert s["mpjpe_mm"] == 500.0
    lo, hi = s["ci95"]["mpjpe_mm"]["lo"], s["ci95"]["mpjpe_mm"]["hi"]
    assert lo == pytest.approx(500 - 98, abs=15) and hi == pytest.approx(500 + 98, abs=15)
    # Seeded: the same seed gives the same interval; identical sequences give a zero-width one.
    assert summarize(rows, [0] * 100, WEIGHTS, 4000, np.random.default_rng(0))["ci95"] == s["ci95"]
    flat = summarize(_rows([0.2] * 30), [0] * 30, WEIGHTS, 500, np.random.default_rng(0))
    assert flat["ci95"]["mpjpe_mm"] == {"lo": 200.0, "hi": 200.0}


def test_bootstrap_resamples_within_each_domain():
    rows = _rows([0.1, 0.2, 0.1, 0.2, 0.1] + [0.3] * 7)
    rows[5:, COL["windows"]] = 2
    draws = bootstrap_sums(rows, [0] * 5 + [1] * 7, 200, np.random.default_rng(0))
    assert (draws[:, COL["windows"]] == 5 + 2 * 7).all()                    # each domain keeps its count
    assert draws[:, COL["mpjpe"]].std() > 0


def test_style_loss_is_averaged_over_aist_windows_only():
    # One AIST++ window with style loss 0.75, one MVHumanNet window without a style target.
    rows = _rows([0.1, 0.1], style=[0.75, None])
    f = figures(rows.sum(0), WEIGHTS)
    assert f["style"] == pytest.approx(0.75) and f["style_accuracy"] == 1.0          # not diluted to 0.375
    assert f["total"] == pytest.approx(WEIGHTS.w_style * 0.75)                      # other parts are 0 here
    mvh_only = summarize(rows[1:], [1], WEIGHTS, 10, np.random.default_rng(0))
    assert "style" not in mvh_only and "style_accuracy" not in mvh_only


def test_training_validation_style_loss_skips_windows_without_genre():
    cfg = VAEConfig(d_in=layout.DIM, d_model=16, n_layers=1, n_heads=2, mlp_ratio=2.0, dropout=0.0, d_z=8,
                    n_domains=N_DOMAINS, n_genres=N_GENRES, style_head=True)
    model = MotionVAE(cfg).eval()
    g = torch.Generator().manual_seed(0)

    def batch(domain: int, genre: int) -> dict:
        x = torch.randn(4, 8, layout.DIM, generator=g)
        x[..., layout.CONTACTS] = (x[..., layout.CONTACTS] > 0).float()
        return {"x": x, "mask": torch.ones(4, 8, dtype=torch.bool), "domain": torch.full((4,), domain),
                "genre": torch.full((4,), genre)}

    aist, mvh = batch(0, 3), batch(1, 0)
    means = validate_losses(model, [mvh, aist], WEIGHTS, torch.device("cpu"))
    with torch.no_grad():
        expected = vae_losses(model(aist["x"], aist["mask"], aist["domain"], aist["genre"]), aist["x"],
                              aist["mask"], aist["genre"], WEIGHTS, WEIGHTS.kl_weight)["style"]
    assert means["style"] == pytest.approx(float(expected), rel=1e-6) and float(expected) > 0
    parts = ("recon", "contact", "kl", "smooth", "style")
    w = (WEIGHTS.w_recon, WEIGHTS.w_contact, WEIGHTS.kl_weight, WEIGHTS.w_smooth, WEIGHTS.w_style)
    assert means["total"] == pytest.approx(sum(wi * means[k] for wi, k in zip(w, parts)))


# ----------------------------------------------------------------------------- the stage


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    params = make_tiny_tree(tmp, **{"split.mvh_test_fraction": 0.25, "split.mvh_val_fraction": 0.25})
    test_name = "gLO_sBM_cAll_d06_mLO0_ch01"                           # a held-out AIST++ sequence
    make_aist_sequence(Path(params.data.aist_root), test_name, seconds=2.0, seed=9, params=params)
    (Path(params.data.aist_root) / "splits" / "pose_test.txt").write_text(test_name + "\n")
    params = params.model_copy(update={
        "train": params.train.model_copy(update={**TINY_TRAIN, "model_path": str(tmp / "models/best.pt"),
                                                 "last_path": str(tmp / "models/last.pt"),
                                                 "live_dir": str(tmp / "dvclive")}),
        "evaluate": params.evaluate.model_copy(update={"metrics": str(tmp / "metrics/eval.json"),
                                                       "plots_dir": str(tmp / "metrics/plots"), "gif_frames": 5,
                                                       "window_frames": 16, "bootstrap": 200})})
    for stage in (split, cache, validate, stats, train):
        stage.main(params)
    return params


def test_evaluate_stage_reports_test_and_val_with_intervals(trained):
    evaluate.main(trained)
    m = json.loads(Path(trained.evaluate.metrics).read_text())
    assert set(m) == {"test", "val", "settings", "checkpoint"}
    assert m["settings"]["window_frames"] == 16 and m["settings"]["model_window"] == TINY_TRAIN["seq_len"]
    for split_name in ("test", "val"):
        for part in ("aist", "mvh", "overall"):
            r = m[split_name][part]
            assert r["windows"] > 0 and r["frames"] == 16 * r["windows"], (split_name, part)
            for key in ("recon", "kl", "total", "contact_f1", "mpjpe_mm", "mpjpe_root_aligned_mm", "pa_mpjpe_mm",
                        "accl_mm_per_frame2"):
                lo, hi = r["ci95"][key]["lo"], r["ci95"][key]["hi"]
                assert math.isfinite(r[key]) and lo <= r[key] <= hi, (split_name, part, key)
        s = m[split_name]
        assert s["overall"]["frames"] == s["aist"]["frames"] + s["mvh"]["frames"]
        assert s["overall"]["sequences"] == s["aist"]["sequences"] + s["mvh"]["sequences"]
        assert 0 <= s["aist"]["style_accuracy"] <= 1 and "style_accuracy" not in s["mvh"]
        assert s["overall"]["style"] == s["aist"]["style"]                   # MVHumanNet windows do not dilute it
    assert m["test"]["aist"]["sequences"] == 1 and m["val"]["aist"]["sequences"] == 1
    plots = Path(trained.evaluate.plots_dir)
    genres = json.loads((plots / "per_genre_mpjpe.json").read_text())
    assert [g["genre"] for g in genres] == ["Lock"]                # the test split holds one gLO sequence
    assert len(json.loads((plots / "confusion.json").read_text())) == m["test"]["aist"]["style_windows"]
    for domain in ("aist", "mvh"):
        assert (plots / f"recon_{domain}.gif").stat().st_size > 1000


def test_evaluate_rebuilds_the_model_from_the_checkpoint_not_params(trained):
    changed = trained.model_copy(update={"train": trained.train.model_copy(update={"d_model": 32, "d_z": 4})})
    Path(trained.evaluate.metrics).unlink(missing_ok=True)
    evaluate.main(changed)                                        # would fail to load weights if params were used
    m = json.loads(Path(trained.evaluate.metrics).read_text())
    assert 1 <= m["checkpoint"]["epoch"] <= TINY_TRAIN["epochs"] and m["test"]["overall"]["windows"] > 0


def test_sequences_shorter_than_the_window_are_counted(trained):
    longer = trained.model_copy(update={"evaluate": trained.evaluate.model_copy(update={"window_frames": 50})})
    evaluate.main(longer)                                          # AIST++ sequences hold 39 frames: too short
    m = json.loads(Path(trained.evaluate.metrics).read_text())
    assert m["test"]["aist"] == {"sequences": 0, "windows": 0, "frames": 0, "too_short_for_window": 1}
    assert m["test"]["overall"]["too_short_for_window"] >= 1
