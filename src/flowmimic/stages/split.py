"""Split stage: which sequences train and which validate, per domain.

AIST++: the official `splits/pose_{train,val}.txt` minus `ignore_list.txt` (when
`data.aist.use_ignore_list`). MVHumanNet has no official split: sequences are grouped by performer
(from the folder name, `data.mvh.performer_regex`) and whole performers go to val, a seeded
`split.mvh_val_fraction` of them, so no performer is in both. Writes
`<split.dir>/{aist,mvh}_{train,val}.txt` and `<split.dir>/report.json`.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict

from flowmimic.cache.catalog import split_path
from flowmimic.errors import DataError
from flowmimic.io import write_json, write_lines
from flowmimic.params import Params
from flowmimic.sources import aist, mvhumannet

log = logging.getLogger(__name__)


def split_aist(aist_root: str, use_ignore_list: bool) -> tuple[dict[str, list[str]], dict]:
    ignore = aist.read_ignore_list(aist_root) if use_ignore_list else set()
    out, report = {}, {}
    for split in ("train", "val"):
        names = aist.read_split(aist_root, split)
        out[split] = [n for n in names if n not in ignore]
        report[split] = {"listed": len(names), "ignored": len(names) - len(out[split]), "kept": len(out[split])}
    return out, report


def split_by_performer(seq_ids: list[str], performers: dict[str, str], val_fraction: float,
                       seed: int) -> dict[str, list[str]]:
    """Whole performers to val: round(fraction x performers), at least one when there are two or more."""
    by_performer: dict[str, list[str]] = defaultdict(list)
    for s in seq_ids:
        by_performer[performers[s]].append(s)
    names = sorted(by_performer)
    random.Random(seed).shuffle(names)
    n_val = min(max(1, round(val_fraction * len(names))), len(names) - 1) if len(names) >= 2 else 0
    val_performers = set(names[:n_val])
    return {"train": sorted(s for s in seq_ids if performers[s] not in val_performers),
            "val": sorted(s for s in seq_ids if performers[s] in val_performers)}


def split_mvh(mvh_root: str, performer_regex: str, val_fraction: float, seed: int) -> tuple[dict, dict]:
    performers, unparsed = {}, []
    for seq_id in mvhumannet.list_sequences(mvh_root):
        try:
            performers[seq_id] = mvhumannet.performer_of(seq_id, performer_regex)
        except DataError as e:
            unparsed.append({"id": seq_id, "reason": e.reason, "message": e.message})
    out = split_by_performer(sorted(performers), performers, val_fraction, seed)
    report = {s: {"sequences": len(ids), "performers": len({performers[i] for i in ids})} for s, ids in out.items()}
    report["skipped"] = unparsed
    return out, report


def main(params: Params) -> None:
    """Write the four split files and a report (counts, ignored, skipped folders)."""
    d, sp = params.data, params.split
    aist_splits, aist_report = split_aist(d.aist_root, d.aist.use_ignore_list)
    mvh_splits, mvh_report = split_mvh(d.mvh_root, d.mvh.performer_regex, sp.mvh_val_fraction, sp.seed)
    for domain, splits in (("aist", aist_splits), ("mvh", mvh_splits)):
        for split, ids in splits.items():
            write_lines(split_path(sp.dir, domain, split), ids)
    write_json(f"{sp.dir}/report.json", {"aist": aist_report, "mvh": mvh_report})
    for rec in mvh_report["skipped"]:
        log.warning("split: skipped %s: %s", rec["id"], rec["message"])
    log.info("split: AIST++ train %d / val %d (ignored %d); MVHumanNet train %d / val %d sequences (%d / %d performers)",
             len(aist_splits["train"]), len(aist_splits["val"]),
             aist_report["train"]["ignored"] + aist_report["val"]["ignored"],
             len(mvh_splits["train"]), len(mvh_splits["val"]),
             mvh_report["train"]["performers"], mvh_report["val"]["performers"])
    if not aist_splits["train"] and not mvh_splits["train"]:
        raise DataError(sp.dir, "no training sequences in either domain (check data.aist_root / data.mvh_root)", "empty")
