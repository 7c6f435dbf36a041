"""Split stage: which sequences train, which select models (val) and which are held out (test).

AIST++: the official `splits/pose_{train,val,test}.txt` minus `ignore_list.txt` (when
`data.aist.use_ignore_list`; a missing list is then an error, not an empty one). MVHumanNet has no
official split: sequences are grouped by performer (from the folder name, `data.mvh.performer_regex`)
and whole performers go to test and to val, a seeded `split.mvh_test_fraction` and
`split.mvh_val_fraction` of them, so no performer is in two splits. MVHumanNet folders that cannot be
sequences (no readable `smpl_param/` folder, a name the performer regex rejects) are dropped with a
reason; a regex that gives every sequence its own performer is warned about (the split would leak one
performer into several splits). Writes `<split.dir>/{aist,mvh}_{train,val,test}.txt` and
`<split.dir>/report.json` (see `flowmimic.cache.catalog`), which the validate stage turns into the data report.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict

from flowmimic.cache.catalog import SPLITS, split_path, split_report_path
from flowmimic.errors import DataError
from flowmimic.io import write_json, write_lines
from flowmimic.params import Params
from flowmimic.sources import aist, mvhumannet

log = logging.getLogger(__name__)
# With at least this many sequences and no performer owning two of them, the regex most likely
# captures the whole folder name (MVHumanNet records every performer in several outfits).
LEAK_MIN_SEQUENCES = 10


def split_aist(aist_root: str, use_ignore_list: bool) -> tuple[dict[str, list[str]], dict]:
    ignore = aist.read_ignore_list(aist_root) if use_ignore_list else set()
    out, report = {}, {}
    for split in SPLITS:
        names = aist.read_split(aist_root, split)
        out[split] = [n for n in names if n not in ignore]
        report[split] = {"listed": len(names), "ignored": len(names) - len(out[split]), "kept": len(out[split])}
    report.update(ignored=sum(report[s]["ignored"] for s in SPLITS), dropped=[], warnings=[])
    return out, report


def split_by_performer(seq_ids: list[str], performers: dict[str, str], val_fraction: float,
                       seed: int, test_fraction: float = 0.0) -> dict[str, list[str]]:
    """Whole performers to test and to val: round(fraction x performers) each, at least one where the
    fraction is positive, as long as one performer is left for train (test is served first)."""
    by_performer: dict[str, list[str]] = defaultdict(list)
    for s in seq_ids:
        by_performer[performers[s]].append(s)
    names = sorted(by_performer)
    random.Random(seed).shuffle(names)
    spare = max(len(names) - 1, 0)                        # performers that may leave train
    n_test = min(max(1, round(test_fraction * len(names))), spare) if test_fraction > 0 else 0
    n_val = min(max(1, round(val_fraction * len(names))), spare - n_test) if val_fraction > 0 else 0
    held = {**dict.fromkeys(names[:n_test], "test"), **dict.fromkeys(names[n_test:n_test + n_val], "val")}
    return {split: sorted(s for s in seq_ids if held.get(performers[s], "train") == split) for split in SPLITS}


def leak_warning(performers: dict[str, str], performer_regex: str) -> str | None:
    """A warning when every one of many sequences has its own performer (the regex likely leaks)."""
    counts = Counter(performers.values())
    if len(performers) < LEAK_MIN_SEQUENCES or max(counts.values()) >= 2:
        return None
    example = sorted(performers)[0]
    return (f"data.mvh.performer_regex {performer_regex!r} gives each of the {len(performers)} MVHumanNet "
            f"sequences its own performer (e.g. {example!r} -> {performers[example]!r}): the same person "
            "in another outfit can land in two splits, so the split would leak")


def split_mvh(mvh_root: str, performer_regex: str, val_fraction: float, seed: int,
              test_fraction: float = 0.0) -> tuple[dict, dict]:
    seq_ids, dropped = mvhumannet.scan_sequences(mvh_root)
    performers = {}
    for seq_id in seq_ids:
        try:
            performers[seq_id] = mvhumannet.performer_of(seq_id, performer_regex)
        except DataError as e:
            dropped.append({"id": seq_id, "reason": e.reason, "message": str(e)})
    out = split_by_performer(sorted(performers), performers, val_fraction, seed, test_fraction)
    report = {s: {"sequences": len(ids), "performers": len({performers[i] for i in ids})} for s, ids in out.items()}
    warning = leak_warning(performers, performer_regex)
    report.update(ignored=0, dropped=sorted(dropped, key=lambda d: d["id"]), warnings=[warning] if warning else [])
    return out, report


def main(params: Params) -> None:
    """Write the six split files and a report (counts, ignored, dropped folders, warnings)."""
    d, sp = params.data, params.split
    aist_splits, aist_report = split_aist(d.aist_root, d.aist.use_ignore_list)
    mvh_splits, mvh_report = split_mvh(d.mvh_root, d.mvh.performer_regex, sp.mvh_val_fraction, sp.seed,
                                       sp.mvh_test_fraction)
    for domain, splits in (("aist", aist_splits), ("mvh", mvh_splits)):
        for split, ids in splits.items():
            write_lines(split_path(sp.dir, domain, split), ids)
    write_json(split_report_path(sp.dir), {"aist": aist_report, "mvh": mvh_report})
    for rec in mvh_report["dropped"]:
        log.warning("split: dropped mvh/%s (%s): %s", rec["id"], rec["reason"], rec["message"])
    for warning in mvh_report["warnings"]:
        log.warning("split: %s", warning)
    log.info("split: AIST++ train %d / val %d / test %d (ignored %d); MVHumanNet train %d / val %d / test %d "
             "sequences (%d / %d / %d performers), %d folder(s) dropped",
             *(len(aist_splits[s]) for s in SPLITS), aist_report["ignored"],
             *(len(mvh_splits[s]) for s in SPLITS), *(mvh_report[s]["performers"] for s in SPLITS),
             len(mvh_report["dropped"]))
    if not aist_splits["train"] and not mvh_splits["train"]:
        raise DataError(sp.dir, "no training sequences in either domain (check data.aist_root / data.mvh_root)", "empty")
