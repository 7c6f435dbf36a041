"""Stage `demo_data` (`flowmimic demo-data`): write the procedural demo dataset in both raw layouts.

Reads the `demo` section (sizes, seed, broken items) and `data` (axis remaps, rates, the SMPL rest
skeleton, `data.mvh.max_gap_s`), plus `features.min_frames` (how short the too-short item is).
Writes `demo.root` = `aist/` (AIST++ annotations layout) + `mvh/` (MVHumanNet layout) +
`manifest.json`; see `flowmimic.demo.dataset` for the exact files.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flowmimic.params import Params
from flowmimic.demo.dataset import write_demo

log = logging.getLogger(__name__)


def main(params: Params) -> None:
    """Generate the demo dataset under `params.demo.root` (replacing an earlier demo there)."""
    summary = write_demo(params)
    log.info("%s", summary.text())
    root = Path(params.demo.root)
    for key, target, sub in (("data.aist_root", params.data.aist_root, "aist"),
                             ("data.mvh_root", params.data.mvh_root, "mvh")):
        if Path(target).resolve() != (root / sub).resolve():
            log.warning("%s = %s is not the demo's %s: the pipeline will read other data than the demo just written",
                        key, target, root / sub)
