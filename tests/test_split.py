"""Split stage: official AIST++ lists minus the ignore list; MVHumanNet by performer, seeded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from flowmimic.cache.catalog import split_path
from flowmimic.errors import DataError
from flowmimic.io import read_json, read_lines
from flowmimic.sources import mvhumannet
from flowmimic.stages import split
from flowmimic.stages.split import split_by_performer

from raw_fixtures import AIST_NAMES, MVH_IDS, make_tiny_tree, tiny_params_dict


def test_split_stage_writes_four_lists(tmp_path):
    params = make_tiny_tree(tmp_path, **{"split.mvh_val_fraction": 0.25})
    split.main(params)
    d = params.split.dir
    assert read_lines(split_path(d, "aist", "train")) == list(AIST_NAMES[:3])     # ignore list drops the 5th
    assert read_lines(split_path(d, "aist", "val")) == [AIST_NAMES[3]]
    train, val = (read_lines(split_path(d, "mvh", s)) for s in ("train", "val"))
    regex = params.data.mvh.performer_regex
    assert {mvhumannet.performer_of(s, regex) for s in train}.isdisjoint({mvhumannet.performer_of(s, regex) for s in val})
    assert len(val) >= 1 and len(train) + len(val) == 5
    report = read_json(f"{d}/report.json")
    assert report["aist"]["train"]["ignored"] == 1 and report["mvh"]["val"]["performers"] == 1


def test_performer_split_is_seeded_and_never_leaks():
    ids = [f"p/{p:03d}_{o}" for p in range(20) for o in range(3)]
    performers = {i: i.split("/")[1].split("_")[0] for i in ids}
    a = split_by_performer(ids, performers, 0.2, seed=1)
    assert a == split_by_performer(ids, performers, 0.2, seed=1)
    assert a != split_by_performer(ids, performers, 0.2, seed=2)
    val_p = {performers[i] for i in a["val"]}
    assert len(val_p) == 4 and val_p.isdisjoint(performers[i] for i in a["train"])
    assert split_by_performer(ids[:3], performers, 0.2, seed=0)["val"] == []      # one performer: all train


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
    listed = {i for s in ("train", "val") for i in read_lines(split_path(params.split.dir, "mvh", s))}
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
