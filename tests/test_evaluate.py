"""Evaluation metrics and the evaluate stage (on a tiny real pipeline run, without DVC)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from flowmimic.demo.clips import dance_clips
from flowmimic.evaluation import Accumulator, accel_mask, joint_errors
from flowmimic.features import layout
from flowmimic.features.humanml3d import joints_to_features
from flowmimic.stages import cache, evaluate, split, stats, train, validate

from fake_cache import TINY_TRAIN
from raw_fixtures import make_tiny_tree


def _features(n=41):
    joints = dance_clips(1, n, fps=20.0).joints[0, :, :22].double()
    return joints_to_features(joints)[None]                                              # (1, n-1, 263)


def test_joint_errors_of_a_uniform_shift():
    target = _features()
    pred = target.clone()
    pred[..., layout.ROOT_Y] += 0.1
    pred[..., layout.RIC.start + 1:layout.RIC.stop:3] += 0.1                     # every joint 10 cm higher
    mask = torch.ones(target.shape[:2], dtype=torch.bool)
    e = joint_errors(pred, target, mask)
    assert torch.allclose(e["mpjpe"], torch.full_like(e["mpjpe"], 0.1), atol=1e-6)
    assert e["mpjpe_root"].abs().max() < 1e-6 and e["accel"].abs().max() < 1e-6
    assert joint_errors(target, target, mask)["mpjpe"].abs().max() < 1e-9


def test_accumulator_weights_by_valid_frames():
    target = _features(21)                                  # (1, 20, 263)
    pred = target.clone()
    pred[..., layout.ROOT_Y] += 0.05
    pred[..., layout.RIC.start + 1:layout.RIC.stop:3] += 0.05
    mask = torch.ones(1, 20, dtype=torch.bool)
    mask[0, 10:] = False
    acc = Accumulator()
    contacts = target[..., layout.CONTACTS]
    acc.add({"recon": torch.tensor(1.0)}, 1, contacts, contacts, mask, joint_errors(pred, target, mask),
            torch.tensor([3]), torch.tensor([[0.0, 0.0, 5.0] + [0.0] * 7]))
    s = acc.summary()
    assert s["frames"] == 10 and s["mpjpe_mm"] == pytest.approx(50.0, abs=1e-3)
    assert s["contact_accuracy"] == 1.0 and s["style_accuracy"] == 1.0 and acc.per_genre_mpjpe() == {3: pytest.approx(50.0)}
    assert accel_mask(mask)[0].sum() == 8


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    params = make_tiny_tree(tmp)
    params = params.model_copy(update={
        "train": params.train.model_copy(update={**TINY_TRAIN, "model_path": str(tmp / "models/best.pt"),
                                                 "last_path": str(tmp / "models/last.pt"),
                                                 "live_dir": str(tmp / "dvclive")}),
        "evaluate": params.evaluate.model_copy(update={"metrics": str(tmp / "metrics/eval.json"),
                                                       "plots_dir": str(tmp / "metrics/plots"), "gif_frames": 5})})
    for stage in (split, cache, validate, stats, train):
        stage.main(params)
    return params


def test_evaluate_stage_writes_metrics_and_plots(trained):
    evaluate.main(trained)
    m = json.loads(Path(trained.evaluate.metrics).read_text())
    assert set(m) == {"aist", "mvh", "overall", "checkpoint"}
    for part in ("aist", "mvh", "overall"):
        for key in ("recon", "kl", "contact_f1", "mpjpe_mm", "mpjpe_root_aligned_mm", "accel_error_mm_per_frame2"):
            assert np.isfinite(m[part][key]), (part, key)
    assert m["overall"]["frames"] == m["aist"]["frames"] + m["mvh"]["frames"]
    assert 0 <= m["aist"]["style_accuracy"] <= 1 and "style_accuracy" not in m["mvh"]
    plots = Path(trained.evaluate.plots_dir)
    genres = json.loads((plots / "per_genre_mpjpe.json").read_text())
    assert [g["genre"] for g in genres] == ["Pop"]                # the val split holds one gPO sequence
    assert len(json.loads((plots / "confusion.json").read_text())) == m["aist"]["style_windows"]
    for domain in ("aist", "mvh"):
        assert (plots / f"recon_{domain}.gif").stat().st_size > 1000


def test_evaluate_rebuilds_the_model_from_the_checkpoint_not_params(trained):
    changed = trained.model_copy(update={"train": trained.train.model_copy(update={"d_model": 32, "d_z": 4})})
    evaluate.main(changed)                                        # would fail to load weights if params were used
    assert json.loads(Path(trained.evaluate.metrics).read_text())["checkpoint"]["epoch"] == TINY_TRAIN["epochs"]
