"""What the cache holds and which sequences each split uses: the contract between stages.

The cache stage writes `<cache.dir>/index.json`; the split stage writes
`<split.dir>/{aist,mvh}_{train,val,test}.txt` (train fits, val selects models, test is held out for
the reported figures) and `<split.dir>/report.json` (what it counted, and the inputs it dropped before
any split list, each with a reason); the validate stage writes `<validate.dir>/bad_{aist,mvh}.txt`.
Downstream stages (stats, train, evaluate) ask this module for the usable sequences of a split
and never read raw data.

index.json::

    {"version": 1, "sequences": [
        {"id": "gBR_sBM_cAll_d04_mBR0_ch01", "domain": "aist", "genre_id": 1, "performer": "d04",
         "frames": 119, "seconds": 6.0, "source": "motions/gBR_....pkl", "status": "ok",
         "reason": null, "message": null, "path": "aist/gBR_....npy", "notes": []}, ...]}

`frames` counts feature frames (joint frames - 1); `path` is relative to the cache folder. `status` is
"ok", "skipped" (a bad input: `reason` says why) or "error" (`reason` "internal_error": a bug of ours).

report.json::

    {"aist": {"train": {...}, "val": {...}, "ignored": 1, "dropped": [], "warnings": []},
     "mvh": {"train": {...}, "val": {...}, "ignored": 0,
             "dropped": [{"id": "part_01/x", "reason": "bad_name", "message": "..."}], "warnings": []}}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from flowmimic.errors import DataError
from flowmimic.io import read_json, read_lines
from flowmimic.taxonomy import DOMAINS

SPLITS: tuple[str, ...] = ("train", "val", "test")
FIT_SPLITS: tuple[str, ...] = ("train", "val")     # what training reads; test never decides anything
INDEX_VERSION = 1
Split = Literal["train", "val", "test"]


@dataclass(frozen=True)
class CachedSequence:
    id: str
    domain: str
    domain_id: int
    genre_id: int          # 0 = unknown (all MVHumanNet), 1..10 AIST++ genres
    performer: str
    frames: int            # feature frames
    path: Path             # absolute or cwd-relative path of the (frames, 263) float32 .npy

    def load(self) -> np.ndarray:
        try:
            arr = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(self.path, f"unreadable cached features ({e})", "unreadable") from e
        return arr


def index_path(cache_dir: str | Path) -> Path:
    return Path(cache_dir) / "index.json"


def split_path(split_dir: str | Path, domain: str, split: str) -> Path:
    return Path(split_dir) / f"{domain}_{split}.txt"


def bad_list_path(validate_dir: str | Path, domain: str) -> Path:
    return Path(validate_dir) / f"bad_{domain}.txt"


def split_report_path(split_dir: str | Path) -> Path:
    return Path(split_dir) / "report.json"


def read_split_report(split_dir: str | Path) -> dict[str, dict]:
    """The split stage's report: per domain "ignored" (int), "dropped" ([{id, reason, message}]), "warnings"."""
    path = split_report_path(split_dir)
    report = read_json(path)
    for domain in DOMAINS:
        entry = report.get(domain) if isinstance(report, dict) else None
        if not (isinstance(entry, dict) and isinstance(entry.get("dropped"), list)
                and isinstance(entry.get("warnings"), list) and isinstance(entry.get("ignored"), int)):
            raise DataError(path, f"not a split report of this version (no '{domain}' dropped/warnings/ignored); "
                            "re-run `flowmimic split`", "invalid")
    return report


def read_index(cache_dir: str | Path) -> list[dict]:
    path = index_path(cache_dir)
    index = read_json(path)
    if not isinstance(index, dict) or index.get("version") != INDEX_VERSION or "sequences" not in index:
        raise DataError(path, f"not a version-{INDEX_VERSION} cache index (re-run `flowmimic cache`)",
                        "invalid")
    return index["sequences"]


def read_bad_ids(validate_dir: str | Path, domain: str) -> set[str]:
    """Ids listed in a bad list (`id<TAB>reason` per line); a missing list means validation not run."""
    path = bad_list_path(validate_dir, domain)
    return {line.split("\t")[0] for line in read_lines(path)}


def usable_sequences(cache_dir: str | Path, split_dir: str | Path, validate_dir: str | Path | None,
                     split: Split, domains: tuple[str, ...] = DOMAINS) -> list[CachedSequence]:
    """Sequences of `split` that are cached with status ok and not on a validation bad list.

    Ordered by domain, then as listed in the split file (deterministic).
    """
    rows = {(r["domain"], r["id"]): r for r in read_index(cache_dir)}
    out: list[CachedSequence] = []
    for domain in domains:
        bad = read_bad_ids(validate_dir, domain) if validate_dir is not None else set()
        for seq_id in read_lines(split_path(split_dir, domain, split)):
            row = rows.get((domain, seq_id))
            if row is None or row["status"] != "ok" or seq_id in bad:
                continue
            out.append(CachedSequence(
                id=seq_id, domain=domain, domain_id=DOMAINS.index(domain), genre_id=int(row["genre_id"]),
                performer=str(row["performer"]), frames=int(row["frames"]),
                path=Path(cache_dir) / row["path"]))
    return out
