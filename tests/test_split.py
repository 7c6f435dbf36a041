"""Split stage: official AIST++ lists minus the ignore list; MVHumanNet by performer, seeded."""

from __future__ import annotations

from flowmimic.cache.catalog import split_path
from flowmimic.io import read_json, read_lines
from flowmimic.sources import mvhumannet
from flowmimic.stages import split
from flowmimic.stages.split import split_by_performer

from raw_fixtures import AIST_NAMES, make_tiny_tree


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
