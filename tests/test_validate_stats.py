"""Validate and stats stages on a tiny cache: bad data is counted; statistics are exact and blended."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from flowmimic.cache.catalog import bad_list_path, read_index
from flowmimic.errors import DataError
from flowmimic.features import layout
from flowmimic.features.humanml3d import joints_to_features
from flowmimic.io import read_lines, save_npy
from flowmimic.stages import cache, split, stats, validate
from flowmimic.stages.stats import RunningMoments, blend, finalize_std

from raw_fixtures import make_tiny_tree


@pytest.fixture()
def cached(tmp_path):
    params = make_tiny_tree(tmp_path)
    split.main(params)
    cache.main(params)
    return params


def _row(params, domain, index=0):
    return [r for r in read_index(params.cache.dir) if r["domain"] == domain][index]


def test_validate_counts_and_flags_bad_sequences(cached):
    upside = _row(cached, "mvh", 0)
    feats = np.load(Path(cached.cache.dir) / upside["path"])
    from flowmimic.features.humanml3d import features_to_joints

    joints = features_to_joints(torch.from_numpy(feats)) * torch.tensor([1.0, -1.0, -1.0])   # turned upside down
    save_npy(Path(cached.cache.dir) / upside["path"], joints_to_features(joints).numpy())
    nan_row = _row(cached, "aist", 1)
    feats = np.load(Path(cached.cache.dir) / nan_row["path"])
    feats[5, 10] = np.nan
    save_npy(Path(cached.cache.dir) / nan_row["path"], feats)

    with pytest.raises(DataError, match="max_bad_fraction"):
        validate.main(cached)                   # 2 of 9 bad > 0.1, but the report is written first
    report = json.loads(Path(cached.validate_.metrics).read_text())
    assert report["mvh"]["invalid_reasons"] == {"upside_down": 1}
    assert report["aist"]["invalid_reasons"] == {"nan": 1}
    assert report["total"]["sequences"] == 9 and report["total"]["usable"] == 7
    assert report["total"]["bad_fraction"] == pytest.approx(2 / 9, abs=1e-4)
    assert report["aist"]["frames"] == 3 * 40 and report["aist"]["hours"] == pytest.approx(120 / 20 / 3600, abs=1e-4)
    bad = read_lines(bad_list_path(cached.validate_.dir, "mvh"))
    assert bad[0].split("\t")[:2] == [upside["id"], "upside_down"]


def test_validate_passes_clean_data_and_lists_cache_skips(cached, tmp_path):
    validate.main(cached)
    report = json.loads(Path(cached.validate_.metrics).read_text())
    assert report["total"]["bad_fraction"] == 0 and report["total"]["usable"] == 9
    assert report["aist"]["split"] == {"train": 3, "val": 1, "test": 0}
    assert read_lines(bad_list_path(cached.validate_.dir, "aist")) == []


def test_running_moments_match_numpy():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(5.0, 3.0, size=(n, 4)) for n in (1, 7, 300, 2)]
    m = RunningMoments(4)
    for c in chunks:
        m.update(c)
    allx = np.concatenate(chunks)
    assert m.count == len(allx)
    np.testing.assert_allclose(m.mean, allx.mean(0), rtol=1e-12)
    np.testing.assert_allclose(m.var, allx.var(0), rtol=1e-10)


def test_blend_is_the_weighted_mixture_and_group_std():
    a, b = RunningMoments(2), RunningMoments(2)
    a.update(np.array([[0.0, 1.0], [2.0, 1.0]]))        # mean (1, 1), var (1, 0)
    b.update(np.full((100, 2), 3.0))                    # mean (3, 3), var 0 — many frames, same weight
    mean, std = blend({"aist": a, "mvh": b}, {"aist": 1.0, "mvh": 1.0})
    np.testing.assert_allclose(mean, [2.0, 2.0])
    np.testing.assert_allclose(std ** 2, [0.5 * (1 + 1) + 0.5 * 1, 0.5 * 1 + 0.5 * 1])
    mean, _ = blend({"aist": a, "mvh": b}, {"aist": 3.0, "mvh": 1.0})
    np.testing.assert_allclose(mean, [1.5, 1.5])
    std = finalize_std(np.arange(layout.CONTINUOUS.stop, dtype=float), group_std=True, min_std=1e-3)
    assert np.all(std[layout.RIC] == std[layout.RIC].mean()) and std[0] == 1e-3


def test_stats_stage_uses_train_split_and_leaves_contacts(cached):
    validate.main(cached)
    stats.main(cached)
    s = np.load(cached.stats.path)
    assert s["mean"].shape == s["std"].shape == (263,) and s["mean"].dtype == np.float32
    np.testing.assert_array_equal(s["mean"][layout.CONTACTS], 0)
    np.testing.assert_array_equal(s["std"][layout.CONTACTS], 1)
    assert int(s["frames_aist"]) == 3 * 39            # 3 AIST++ train sequences of 39 feature frames
    train_aist = [np.load(Path(cached.cache.dir) / r["path"]) for r in read_index(cached.cache.dir)
                  if r["domain"] == "aist" and r["id"] in read_lines(Path(cached.split.dir) / "aist_train.txt")]
    np.testing.assert_allclose(s["mean_aist"], np.concatenate(train_aist)[:, :259].mean(0), rtol=1e-4, atol=1e-6)
    assert np.all(s["std"][:259] >= cached.stats.min_std)


def test_split_ids_missing_from_the_index_are_counted_not_dropped(cached):
    """A split list naming a sequence the cache index lacks (a stale index): counted, listed, warned."""
    split_file = Path(cached.split.dir) / "mvh_train.txt"
    split_file.write_text(split_file.read_text() + "part_07/123456_01\n")
    with pytest.raises(DataError, match="max_bad_fraction"):
        validate.main(cached.model_copy(update={"validate_": cached.validate_.model_copy(
            update={"max_bad_fraction": 0.05})}))
    report = json.loads(Path(cached.validate_.metrics).read_text())
    assert report["mvh"]["drop_reasons"] == {"not_in_index": 1} and report["mvh"]["dropped"] == 1
    assert report["total"]["dropped"] == 1 and report["total"]["bad_fraction"] == pytest.approx(1 / 10, abs=1e-4)
    line = read_lines(bad_list_path(cached.validate_.dir, "mvh"))[0].split("\t")
    assert line[:2] == ["part_07/123456_01", "not_in_index"] and "mvh_train.txt" in line[2]


def test_data_report_shows_split_drops_ignored_and_warnings(cached):
    report_path = Path(cached.split.dir) / "report.json"
    split_report = json.loads(report_path.read_text())
    split_report["mvh"]["dropped"].append({"id": "part_09/x", "reason": "not_a_folder", "message": "m"})
    split_report["mvh"]["warnings"].append("the split would leak")
    report_path.write_text(json.dumps(split_report))
    validate.main(cached)
    report = json.loads(Path(cached.validate_.metrics).read_text())
    assert report["mvh"]["drop_reasons"] == {"not_a_folder": 1} and report["mvh"]["warnings"] == ["the split would leak"]
    assert report["aist"]["ignored"] == 1 and report["total"]["warnings"] == 1
    assert "part_09/x\tnot_a_folder\tm" in read_lines(bad_list_path(cached.validate_.dir, "mvh"))
    report_path.write_text(json.dumps({"aist": {}, "mvh": {}}))          # a report from an older split stage
    with pytest.raises(DataError, match="re-run `flowmimic split`"):
        validate.main(cached)
