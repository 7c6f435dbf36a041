"""Validate stage: scan the cache for bad sequences and write the data report (DVC metrics).

Per cached sequence: finite values, shape, length, 0/1 contacts, and plausibility of the joints
recovered from the features: bone lengths equal the HumanML3D target skeleton (within
`validate.bone_tolerance_m`), the head above the pelvis in at least `validate.min_upright_fraction`
of the frames (a wrong axis remap turns people upside down; breakdancers are allowed headstands),
root speed and joint distance from the root within human limits. Together with the cache stage's
skips and errors, the split stage's drops (`<split.dir>/report.json`) and split ids the index lacks,
these make `<validate.dir>/bad_{aist,mvh}.txt` (`id<TAB>reason<TAB>message`, every unusable input) and
`validate.metrics` (counts per domain and reason, frames, hours, per split, warnings; see
`data_report`). Fails when the cache stage hit internal errors or more than
`validate.max_bad_fraction` of all inputs are bad, after writing both.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from flowmimic.body.skeleton import HEAD, PARENTS, PELVIS, TARGET_BONE_LENGTHS
from flowmimic.cache.catalog import (DOMAINS, SPLITS, bad_list_path, index_path, read_index, read_split_report,
                                     split_path)
from flowmimic.errors import DataError, InternalError
from flowmimic.features import layout
from flowmimic.features.humanml3d import features_to_joints
from flowmimic.io import read_lines, write_json, write_lines
from flowmimic.params import Params

log = logging.getLogger(__name__)
NOT_IN_INDEX = "not_in_index"      # a split list names a sequence the cache index lacks


def check_features(feats: np.ndarray, fps: float, params: Params) -> tuple[str, str] | None:
    """(reason, message) for the first problem found in one (frames, 263) array, or None."""
    v = params.validate_
    if feats.ndim != 2 or feats.shape[1] != layout.DIM:
        return "shape", f"expected (frames, {layout.DIM}), got {feats.shape}"
    if not np.isfinite(feats).all():
        rows = np.flatnonzero(~np.isfinite(feats).all(axis=1))
        return "nan", f"NaN/Inf in {len(rows)} frames, first {rows[:5].tolist()}"
    if feats.shape[0] + 1 < params.features.min_frames:
        return "too_short", f"{feats.shape[0] + 1} joint frames < features.min_frames={params.features.min_frames}"
    contacts = feats[:, layout.CONTACTS]
    if not np.isin(contacts, (0.0, 1.0)).all():
        return "contacts", "foot contacts are not all 0/1"
    x = torch.from_numpy(feats).to(torch.float64)
    joints = features_to_joints(x)                                      # (N, 22, 3)
    bones = (joints[:, 1:] - joints[:, list(PARENTS[1:])]).norm(dim=-1)  # (N, 21)
    dev = (bones - torch.tensor(TARGET_BONE_LENGTHS[1:], dtype=bones.dtype)).abs().max().item()
    if dev > v.bone_tolerance_m:
        return "bone_length", f"bone lengths deviate {dev:.4f} m from the target skeleton"
    upright = (joints[:, HEAD, 1] > joints[:, PELVIS, 1]).double().mean().item()
    if upright < v.min_upright_fraction:
        return "upside_down", (f"head above pelvis in only {upright:.0%} of frames (wrong axis remap?), "
                               f"validate.min_upright_fraction={v.min_upright_fraction}")
    speed = (x[:, layout.ROOT_XZ_VEL].norm(dim=-1) * fps).max().item()
    if speed > v.max_root_speed_mps:
        return "root_speed", f"root moves at {speed:.1f} m/s > validate.max_root_speed_mps={v.max_root_speed_mps}"
    radius = (joints - joints[:, :1]).norm(dim=-1).max().item()
    if radius > v.max_joint_radius_m:
        return "joint_radius", f"a joint sits {radius:.2f} m from the root > validate.max_joint_radius_m"
    return None


def main(params: Params) -> None:
    """Write the bad lists and the data report; raise on internal errors or if too many inputs are bad."""
    cache_dir = Path(params.cache.dir)
    rows = read_index(cache_dir)
    split_report = read_split_report(params.split.dir)
    bad: dict[str, list[tuple[str, str, str]]] = {d: [] for d in DOMAINS}
    invalid: set[tuple[str, str]] = set()
    for row in tqdm(rows, desc="validate", unit="seq"):
        if row["status"] != "ok":
            bad[row["domain"]].append((row["id"], row["reason"], row["message"] or ""))
            continue
        path = cache_dir / row["path"]
        try:
            feats = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            problem = ("unreadable", f"{path}: {e}")
        else:
            problem = check_features(feats, params.data.fps, params)
        if problem is not None:
            bad[row["domain"]].append((row["id"], problem[0], f"{path}: {problem[1]}"))
            invalid.add((row["domain"], row["id"]))
    dropped = dropped_inputs(rows, split_report, params)
    for domain in DOMAINS:
        lines = bad[domain] + dropped[domain]
        write_lines(bad_list_path(params.validate_.dir, domain), ["\t".join(b) for b in lines])

    metrics = data_report(rows, bad, invalid, dropped, split_report, params)
    write_json(params.validate_.metrics, metrics)
    for domain in DOMAINS:
        for seq_id, reason, message in bad[domain]:
            if (domain, seq_id) in invalid:        # the cache stage already reported its own skips
                log.warning("validate: bad %s/%s (%s): %s", domain, seq_id, reason, message)
        for seq_id, reason, message in dropped[domain]:
            if reason == NOT_IN_INDEX:             # the split stage already reported its own drops
                log.warning("validate: %s/%s (%s): %s", domain, seq_id, reason, message)
        for warning in metrics[domain]["warnings"]:
            log.warning("validate: WARNING %s: %s", domain, warning)
    log.info("validate: %d usable of %d sequences (%.2f h), %d input(s) dropped before caching; bad fraction %.3f",
             metrics["total"]["usable"], metrics["total"]["sequences"], metrics["total"]["hours"],
             metrics["total"]["dropped"], metrics["total"]["bad_fraction"])
    if metrics["total"]["errors"]:
        raise InternalError(f"{params.validate_.metrics}: {metrics['total']['errors']} sequence(s) hit an internal "
                            "error in the cache stage (a bug in FlowMimic, not bad data); see its log and re-run it")
    if metrics["total"]["bad_fraction"] > params.validate_.max_bad_fraction:
        raise DataError(params.validate_.metrics, f"bad fraction {metrics['total']['bad_fraction']:.3f} > "
                        f"validate.max_bad_fraction={params.validate_.max_bad_fraction}; see the bad lists in "
                        f"{params.validate_.dir}", "too_many_bad")


def dropped_inputs(rows: list[dict], split_report: dict, params: Params) -> dict[str, list[tuple[str, str, str]]]:
    """Per domain, (id, reason, message) of the inputs that never reached the cache index: those the split
    stage dropped, and ids a split list names that the index lacks (reason `NOT_IN_INDEX`)."""
    indexed = {(r["domain"], r["id"]) for r in rows}
    out: dict[str, list[tuple[str, str, str]]] = {}
    for domain in DOMAINS:
        out[domain] = [(d["id"], d["reason"], d["message"]) for d in split_report[domain]["dropped"]]
        missing: dict[str, str] = {}
        for split in SPLITS:
            path = split_path(params.split.dir, domain, split)
            for seq_id in read_lines(path):
                if (domain, seq_id) not in indexed and seq_id not in missing:
                    missing[seq_id] = (f"{path} lists it but the cache index {index_path(params.cache.dir)} has no "
                                       "row for it (re-run `flowmimic cache`)")
        out[domain] += [(seq_id, NOT_IN_INDEX, message) for seq_id, message in missing.items()]
    return out


def data_report(rows: list[dict], bad: dict[str, list], invalid: set[tuple[str, str]],
                dropped: dict[str, list], split_report: dict, params: Params) -> dict:
    """The data report: per domain and in total, what is usable and why every other input is not.

    This is the one place that counts inputs by reason: `skip_reasons` (the cache stage's bad inputs),
    `invalid_reasons` (cached but failing validation), `error_reasons` (our bugs: `internal_error`),
    `drop_reasons` (never cached: dropped by the split stage, or `not_in_index`); `ignored` counts the
    AIST++ ignore list (left out on purpose, not bad); `warnings` the split stage's (e.g. a leaking
    performer regex). The bad fraction is every bad input over every input.
    """
    report: dict = {}
    for domain in DOMAINS:
        mine = [r for r in rows if r["domain"] == domain]
        usable = [r for r in mine if r["status"] == "ok" and (domain, r["id"]) not in invalid]
        usable_ids = {r["id"] for r in usable}
        frames = sum(r["frames"] + 1 for r in usable)        # joint frames at data.fps
        skipped = Counter(r["reason"] for r in mine if r["status"] == "skipped")
        errors = Counter(r["reason"] for r in mine if r["status"] == "error")
        bad_validation = Counter(reason for seq_id, reason, _ in bad[domain] if (domain, seq_id) in invalid)
        drops = Counter(reason for _, reason, _ in dropped[domain])
        report[domain] = {
            "sequences": len(mine), "usable": len(usable), "skipped": sum(skipped.values()),
            "invalid": sum(bad_validation.values()), "frames": frames,
            "hours": round(frames / params.data.fps / 3600, 4),
            "skip_reasons": dict(sorted(skipped.items())), "invalid_reasons": dict(sorted(bad_validation.items())),
            "split": {s: sum(1 for i in read_lines(split_path(params.split.dir, domain, s)) if i in usable_ids)
                      for s in SPLITS},
            "errors": sum(errors.values()), "error_reasons": dict(sorted(errors.items())),
            "dropped": sum(drops.values()), "drop_reasons": dict(sorted(drops.items())),
            "ignored": split_report[domain]["ignored"], "warnings": list(split_report[domain]["warnings"]),
        }
    n = sum(report[d]["sequences"] for d in DOMAINS)
    n_dropped = sum(report[d]["dropped"] for d in DOMAINS)
    n_bad = sum(report[d]["skipped"] + report[d]["invalid"] + report[d]["errors"] + report[d]["dropped"]
                for d in DOMAINS)
    report["total"] = {
        "sequences": n, "usable": sum(report[d]["usable"] for d in DOMAINS),
        "frames": sum(report[d]["frames"] for d in DOMAINS),
        "hours": round(sum(report[d]["hours"] for d in DOMAINS), 4),
        "bad_fraction": round(n_bad / (n + n_dropped), 4) if n + n_dropped else 0.0,
        "errors": sum(report[d]["errors"] for d in DOMAINS), "dropped": n_dropped,
        "warnings": sum(len(report[d]["warnings"]) for d in DOMAINS),
    }
    return report
