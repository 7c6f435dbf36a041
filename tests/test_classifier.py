"""The independent genre classifier on tiny synthetic genre windows from the demo generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flowmimic.body.skeleton import default_rest_joints
from flowmimic.demo.dances import genre_tempo, synthesize_dances
from flowmimic.demo.motion import DanceSpec
from flowmimic.errors import DataError
from flowmimic.features.humanml3d import joints_to_features_list
from flowmimic.model.classifier import (ClassifierConfig, ClassifierTraining, GenreClassifier, confusion_matrix,
                                        load_classifier, save_classifier, score_classifier, train_classifier)
from flowmimic.params import load_params
from flowmimic.taxonomy import GENRES, N_GENRES

from raw_fixtures import REPO

T = 30                       # window frames
DANCERS = 4                  # per genre; dancer 3 is held out
TINY = ClassifierConfig(d_in=263, d_model=32, n_layers=1, n_heads=2, mlp_ratio=2.0, dropout=0.0, n_genres=N_GENRES)
TRAINING = ClassifierTraining(seed=0, batch_size=32, epochs=8, lr=3e-3, weight_decay=0.01, min_std=1e-3)


@pytest.fixture(scope="module")
def genre_windows(one_thread):
    """Half-overlapping 30-frame windows of 6 s demo dances: (train X, y), (held-out dancer X, y)."""
    specs = [DanceSpec(genre=g, dancer_seed=100 * gi + d, advanced=bool(d % 2), bpm=genre_tempo(g, d % 6),
                       seconds=6.0, seed=1000 * gi + d) for gi, g in enumerate(GENRES) for d in range(DANCERS)]
    motion = synthesize_dances(specs, default_rest_joints(), 20.0)
    feats = joints_to_features_list([motion.sequence(b)[2][:, :22] for b in range(len(specs))])
    sets = {True: ([], []), False: ([], [])}
    for i, f in enumerate(feats):
        held_out = i % DANCERS == DANCERS - 1
        for start in range(0, f.shape[0] - T + 1, T // 2):
            sets[held_out][0].append(f[start:start + T])
            sets[held_out][1].append(i // DANCERS + 1)                      # genre id 1..10
    return [(torch.stack(x), torch.tensor(y)) for x, y in (sets[False], sets[True])]


@pytest.fixture(scope="module")
def trained(genre_windows):
    (x, y), _ = genre_windows
    return train_classifier(x, y, TINY, TRAINING)


def test_tiny_classifier_beats_chance_on_unseen_dancers(genre_windows, trained):
    (x, y), (x_test, y_test) = genre_windows
    train_scores = score_classifier(trained, x, y)
    test_scores = score_classifier(trained, x_test, y_test)
    assert train_scores.accuracy > 0.8
    assert test_scores.accuracy > 0.35                                       # chance: 0.1 (measured ~0.6)
    assert test_scores.confusion.shape == (N_GENRES, N_GENRES) and test_scores.confusion.sum() == len(y_test)
    assert test_scores.confusion.sum(1).tolist() == torch.bincount(y_test - 1, minlength=N_GENRES).tolist()


def test_trained_classifier_is_frozen_and_deterministic(genre_windows, trained):
    (x, y), (x_test, _) = genre_windows
    assert not trained.training and not any(p.requires_grad for p in trained.parameters())
    torch.manual_seed(123)                                                   # the global RNG plays no part
    again = train_classifier(x, y, TINY, TRAINING)
    assert torch.equal(trained.predict(x_test), again.predict(x_test))
    # Its input normalisation travels with it: fitted on the training windows, contacts untouched.
    assert torch.allclose(trained.feat_mean[:259], x.reshape(-1, 263)[:, :259].mean(0), atol=1e-4)
    assert trained.feat_mean[259:].abs().max() == 0 and torch.all(trained.feat_std[259:] == 1)


def test_classifier_file_round_trip_and_bad_files(tmp_path, genre_windows, trained):
    _, (x_test, _) = genre_windows
    path = tmp_path / "clf.pt"
    save_classifier(path, trained, extra={"accuracy": 0.5})
    loaded = load_classifier(path)
    mask = torch.ones(x_test.shape[:2], dtype=torch.bool)
    assert torch.equal(loaded(x_test, mask), trained(x_test, mask))
    assert not any(p.requires_grad for p in loaded.parameters())
    with pytest.raises(DataError, match="genre classifier not found"):
        load_classifier(tmp_path / "missing.pt")
    (tmp_path / "broken.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="broken.pt: unreadable classifier file"):
        load_classifier(tmp_path / "broken.pt")


def test_bad_training_inputs_fail_clearly():
    x = torch.zeros(4, 8, 263)
    with pytest.raises(ValueError, match="genre ids must lie in 1..10"):
        train_classifier(x, torch.tensor([0, 1, 2, 3]), TINY, TRAINING)
    with pytest.raises(ValueError, match=r"windows must be \(N, T, 263\)"):
        train_classifier(torch.zeros(4, 8, 262), torch.tensor([1, 1, 2, 3]), TINY, TRAINING)
    bad = x.clone()
    bad[0, 0, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        train_classifier(bad, torch.tensor([1, 1, 2, 3]), TINY, TRAINING)


def test_padding_does_not_change_a_windows_verdict(genre_windows, trained):
    _, (x_test, _) = genre_windows
    x = x_test[:5]
    padded = torch.cat([x, torch.full((5, 7, 263), 123.0)], dim=1)            # garbage on padded frames
    mask = torch.zeros(padded.shape[:2], dtype=torch.bool)
    mask[:, :T] = True
    full = torch.ones(x.shape[:2], dtype=torch.bool)
    assert torch.allclose(trained(padded, mask), trained(x, full), atol=1e-5)


def test_confusion_matrix_counts_rows_true_columns_predicted():
    conf = confusion_matrix(torch.tensor([1, 1, 2, 10]), torch.tensor([1, 2, 2, 3]))
    expected = np.zeros((N_GENRES, N_GENRES), dtype=np.int64)
    expected[0, 0] = expected[0, 1] = expected[1, 1] = expected[9, 2] = 1
    assert np.array_equal(conf, expected)


def test_config_from_the_classifier_params_section():
    p = load_params(REPO / "params.yaml").classifier
    cfg = ClassifierConfig.from_params(p)
    assert cfg.d_model == p.d_model and cfg.n_genres == N_GENRES and cfg.d_in == 263
    assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg
    assert ClassifierTraining.from_params(p).epochs == p.epochs
    with pytest.raises(ValueError, match="do not match"):
        ClassifierConfig.from_dict({**cfg.to_dict(), "extra": 1})
    assert isinstance(GenreClassifier(cfg), torch.nn.Module)


def test_classifier_stage_trains_on_aist_train_only_and_scores_the_eval_split(tmp_path, monkeypatch, one_thread):
    import json

    from fake_cache import make_fake_cache
    from flowmimic.cache.catalog import usable_sequences
    from flowmimic.stages import classifier as stage

    params = make_fake_cache(tmp_path)
    tiny = dict(d_model=16, n_layers=1, n_heads=2, seq_len=8, windows_per_sequence=3, epochs=2, batch_size=8,
                device="cpu")
    params = params.model_copy(update={"classifier": params.classifier.model_copy(update=tiny)})
    monkeypatch.setattr(stage, "EVAL_SPLIT", "val")          # scored on val here: any split works
    metrics = stage.main(params)

    paths = (params.cache.dir, params.split.dir, params.validate_.dir)
    train = usable_sequences(*paths, "train", domains=("aist",))
    val = usable_sequences(*paths, "val", domains=("aist",))
    assert metrics["train_sequences"] == len(train) and metrics["train_windows"] == 3 * len(train)
    assert metrics["test_windows"] == sum(s.frames // 8 for s in val)                 # full windows only
    assert metrics["too_short_for_window"] == sum(s.frames < 8 for s in val) > 0
    assert sum(map(sum, metrics["confusion"]["counts"])) == metrics["test_windows"]
    lo, hi = metrics["accuracy_ci95"]
    assert lo <= metrics["accuracy"] <= hi
    assert all(set(v) == {"windows"} for v in metrics["per_genre"].values())   # all under the minimum count
    assert json.loads(Path(params.classifier.metrics).read_text()) == metrics
    assert load_classifier(params.classifier.model_path).config.d_model == 16
    plot = json.loads((Path(params.classifier.plots_dir) / "confusion.json").read_text())
    assert len(plot) == metrics["test_windows"]                # one record per scored window (DVC confusion)
    assert sum(r["actual"] == r["predicted"] for r in plot) == metrics["correct"]
