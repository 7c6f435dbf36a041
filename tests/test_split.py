"""Split stage: official AIST++ lists minus the ignore list; MVHumanNet by performer, seeded; the
committed demo params give val and test splits large enough to report on."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from flowmimic.cache.catalog import SPLITS, split_path
from flowmimic.demo.dataset import plan_aist, plan_mvh, split_aist
from flowmimic.errors import DataError
from flowmimic.io import read_json, read_lines
from flowmimic.params import load_params
from flowmimic.sources import mvhumannet
from flowmimic.stages import split
from flowmimic.stages.split import split_by_performer
from flowmimic.taxonomy import GENRES

from raw_fixtures import AIST_NAMES, MVH_IDS, make_tiny_tree, tiny_params_dict

REPO = Path(__file__).resolve().parents[1]
DEMO_BROKEN = {"aist": 3, "mvh": 3}    # what demo.inject_bad breaks (AIST++ ones only among train sequences)
MIN_HELD_OUT = 5                       # val and test sequences per AIST++ genre and per domain


def test_split_stage_writes_six_lists(tmp_path):
    params = make_tiny_tree(tmp_path, **{"split.mvh_val_fraction": 0.25, "split.mvh_test_fraction": 0.25})
    (Path(params.data.aist_root) / "splits" / "pose_test.txt").write_text(AIST_NAMES[2] + "\n")
    split.main(params)
    d = params.split.dir
    assert read_lines(split_path(d, "aist", "train")) == list(AIST_NAMES[:3])     # ignore list drops the 5th
    assert read_lines(split_path(d, "aist", "val")) == [AIST_NAMES[3]]
    assert read_lines(split_path(d, "aist", "test")) == [AIST_NAMES[2]]           # the official test list
    lists = {s: read_lines(split_path(d, "mvh", s)) for s in SPLITS}
    regex = params.data.mvh.performer_regex
    performers = {s: {mvhumannet.performer_of(i, regex) for i in ids} for s, ids in lists.items()}
    pairs = (("train", "val"), ("train", "test"), ("val", "test"))
    assert all(performers[a].isdisjoint(performers[b]) for a, b in pairs)
    assert all(lists.values()) and sum(len(v) for v in lists.values()) == 5
    report = read_json(f"{d}/report.json")
    assert report["aist"]["train"]["ignored"] == 1 and report["aist"]["test"] == {"listed": 1, "ignored": 0, "kept": 1}
    assert report["mvh"]["val"]["performers"] == 1 and report["mvh"]["test"]["performers"] == 1


def test_performer_split_is_seeded_and_never_leaks():
    ids = [f"p/{p:03d}_{o}" for p in range(20) for o in range(3)]
    performers = {i: i.split("/")[1].split("_")[0] for i in ids}
    a = split_by_performer(ids, performers, 0.2, seed=1)
    assert a == split_by_performer(ids, performers, 0.2, seed=1)
    assert a != split_by_performer(ids, performers, 0.2, seed=2)
    val_p = {performers[i] for i in a["val"]}
    assert len(val_p) == 4 and val_p.isdisjoint(performers[i] for i in a["train"])
    assert split_by_performer(ids[:3], performers, 0.2, seed=0)["val"] == []      # one performer: all train


def test_performer_split_holds_out_a_test_share_disjoint_from_val():
    ids = [f"p/{p:03d}_{o}" for p in range(20) for o in range(3)]
    performers = {i: i.split("/")[1].split("_")[0] for i in ids}
    a = split_by_performer(ids, performers, 0.2, seed=1, test_fraction=0.15)
    got = {s: {performers[i] for i in a[s]} for s in SPLITS}
    assert (len(got["train"]), len(got["val"]), len(got["test"])) == (13, 4, 3)
    assert not got["val"] & got["test"] and not got["train"] & (got["val"] | got["test"])
    assert sorted(sum(a.values(), [])) == sorted(ids)
    three = [i for i in ids if performers[i] in {"000", "001", "002"}]
    small = split_by_performer(three, performers, 0.2, 0, 0.2)
    assert [len({performers[i] for i in small[s]}) for s in SPLITS] == [1, 1, 1]
    two = split_by_performer(three[:6], performers, 0.2, 0, 0.2)                 # train keeps one performer
    assert two["train"] and two["test"] and not two["val"]


def test_committed_demo_params_give_enough_val_and_test_sequences():
    """From the committed params.yaml and the demo generator's own lists (no pipeline run)."""
    params = load_params(REPO / "params.yaml")
    aist = split_aist(plan_aist(params), params)
    dancer = {it.name: it.dancer for it in plan_aist(params)}
    for held_out in ("val", "test"):
        per_genre = Counter(name[:3] for name in aist[held_out])
        assert all(per_genre[g] >= MIN_HELD_OUT for g in GENRES), (held_out, per_genre)
    dancers = {s: {dancer[n] for n in names} for s, names in aist.items()}
    assert not dancers["train"] & dancers["val"] and not dancers["train"] & dancers["test"]
    assert not dancers["val"] & dancers["test"]
    # Training data does not shrink: 3 dancers x 2 sequences per genre before the ignore list and broken items.
    assert len(aist["train"]) >= 60

    regex = params.data.mvh.performer_regex
    ids = [it.seq_id for it in plan_mvh(params)]
    performer = {i: mvhumannet.performer_of(i, regex) for i in ids}
    mvh = split_by_performer(sorted(ids), performer, params.split.mvh_val_fraction, params.split.seed,
                             params.split.mvh_test_fraction)
    for held_out in ("val", "test"):     # even if every broken MVHumanNet sequence lands in this split
        assert len(mvh[held_out]) - DEMO_BROKEN["mvh"] >= MIN_HELD_OUT, (held_out, len(mvh[held_out]))
    owners = {s: {performer[i] for i in v} for s, v in mvh.items()}
    assert not owners["train"] & owners["val"] and not owners["train"] & owners["test"]
    assert not owners["val"] & owners["test"]
    assert len(mvh["train"]) >= 32        # the train split of the previous demo (16 performers x 2 outfits)


def test_params_refuse_held_out_shares_that_leave_train_empty():
    import pytest
    import yaml

    from flowmimic.errors import ConfigError
    from flowmimic.params import params_from_dict

    def raw(**changes):
        r = yaml.safe_load((REPO / "params.yaml").read_text())
        for key, value in changes.items():
            section, name = key.split(".")
            r[section][name] = value
        return r

    params_from_dict(raw())
    with pytest.raises(ConfigError, match="demo.aist_test_dancers"):
        params_from_dict(raw(**{"demo.aist_dancers": 6}))                 # 3 val + 3 test: no train dancer
    with pytest.raises(ConfigError, match="split.mvh_test_fraction"):
        params_from_dict(raw(**{"split.mvh_val_fraction": 0.5, "split.mvh_test_fraction": 0.5}))
    with pytest.raises(ConfigError, match="evaluate.window_frames"):
        params_from_dict(raw(**{"evaluate.window_frames": 2}))
def test_missing_ignore_list_fails_with_one_line_unless_turned_off(tmp_path):
    params = make_tiny_tree(tmp_path)
    ignore = Path(params.data.aist_root) / "ignore_list.txt"
    ignore.unlink()
    with pytest.raises(DataError, match="use_ignore_list") as e:
        split.main(params)
    assert e.value.path == str(ignore) and e.value.reason == "missing" and "\n" not in str(e.value)
    off = params.model_copy(update={"data": params.data.model_copy(
        update={"aist": params.data.aist.model_copy(update={"use_ignore_list": False})})})
    split.main(off)
    assert read_lines(split_path(params.split.dir, "aist", "train")) == [*AIST_NAMES[:3], AIST_NAMES[4]]


def test_dropped_folders_are_in_the_report_with_a_reason(tmp_path, caplog):
    params = make_tiny_tree(tmp_path)
    mvh = Path(params.data.mvh_root)
    (mvh / "part_03" / "100009_01").mkdir(parents=True)
    (mvh / "part_03" / "100009_01" / "smpl_param").write_text("")      # a file, not a folder
    (mvh / "part_03" / "100010_01").symlink_to("100010_01")             # a symlink loop
    (mvh / "part_03" / "_nameless").mkdir()
    (mvh / "part_03" / "_nameless" / "smpl_param").mkdir()              # the regex finds no performer
    with caplog.at_level(logging.WARNING):
        split.main(params)
    dropped = {d["id"]: d for d in read_json(f"{params.split.dir}/report.json")["mvh"]["dropped"]}
    assert {k: d["reason"] for k, d in dropped.items()} == {
        "part_03/100009_01": "not_a_folder", "part_03/100010_01": "unreadable", "part_03/_nameless": "bad_name"}
    assert all(d["message"] for d in dropped.values())
    assert all(k in caplog.text for k in dropped)
    listed = {i for s in SPLITS for i in read_lines(split_path(params.split.dir, "mvh", s))}
    assert listed == set(MVH_IDS)


def test_a_regex_giving_every_sequence_its_own_performer_warns_loudly(tmp_path, caplog):
    params = make_tiny_tree(tmp_path, **{"data.mvh": {**tiny_params_dict(tmp_path)["data"]["mvh"],
                                                     "performer_regex": r"^(?P<performer>.+)$"}})
    mvh = Path(params.data.mvh_root)
    for k in range(split.LEAK_MIN_SEQUENCES - len(MVH_IDS)):
        (mvh / "part_03" / f"1000{20 + k}_01" / "smpl_param").mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        split.main(params)
    warnings = read_json(f"{params.split.dir}/report.json")["mvh"]["warnings"]
    assert len(warnings) == 1 and "leak" in warnings[0] and "performer_regex" in warnings[0]
    assert any(r.levelno == logging.WARNING and "leak" in r.getMessage() for r in caplog.records)
    ok = make_tiny_tree(tmp_path / "ok")
    for k in range(split.LEAK_MIN_SEQUENCES):
        (Path(ok.data.mvh_root) / "part_03" / f"1000{20 + k}_01" / "smpl_param").mkdir(parents=True)
    split.main(ok)                        # the default regex: performers with several outfits, no warning
    assert read_json(f"{ok.split.dir}/report.json")["mvh"]["warnings"] == []
