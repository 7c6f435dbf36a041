"""Writing generated motions: OUT's extension picks the format; every file is written atomically.

    .npy   joints (T, 22, 3) float32, metres, y-up
    .npz   joints, features (N, 263) (canonical frame), fps, domain, genre (id), genre_name, source,
           checkpoint_sha256, canonical (bool)
    .gif   a stick-figure animation (at most evaluate.gif_frames frames: long motions are subsampled)
    .bvh   BVH via `flowmimic.export.bvh.write_bvh`
    .pkl   SMPL poses in AIST++'s motion format via `flowmimic.export.smpl.write_aist_pkl`

`-n N > 1` writes OUT_000.ext, OUT_001.ext, ... Every problem with OUT is a `DataError` naming it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from flowmimic.errors import DataError
from flowmimic.generation.core import GeneratedMotion
from flowmimic.io import save_npy, save_npz
from flowmimic.params import DataParams, Params
from flowmimic.taxonomy import genre_name

EXPORTERS: tuple[str, ...] = (".bvh", ".pkl")      # written by `flowmimic.export` (see `write_export`)
OUTPUT_KINDS: tuple[str, ...] = (".npy", ".npz", ".gif", *EXPORTERS)


def output_paths(out: str | Path, n: int) -> list[Path]:
    """OUT itself for one motion; OUT_000.ext ... for n > 1. `DataError` for an unknown extension."""
    out = Path(out)
    if out.suffix.lower() not in OUTPUT_KINDS:
        raise DataError(out, f"unsupported output type {out.suffix or '(no extension)'!r}; "
                        f"use one of {', '.join(OUTPUT_KINDS)}", "invalid")
    if n == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i:03d}{out.suffix}") for i in range(n)]


def check_writable(path: Path) -> None:
    """Fail early (before any model work) if `path` cannot be written: `DataError` naming it."""
    if path.is_dir():
        raise DataError(path, "is a folder, not a file to write", "unwritable")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:      # the first folder that exists
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(path, f"cannot write here ({parent} is a file, not a folder)", "unwritable")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(path, f"cannot write here (folder {parent} is not writable)", "unwritable")
    if path.exists() and not os.access(path, os.W_OK):
        raise DataError(path, "cannot overwrite (file is read-only)", "unwritable")


def write_export(path: Path, joints: np.ndarray, fps: float, data: DataParams) -> None:
    """The one dispatch to the `flowmimic.export` writers (BVH, AIST++-format SMPL poses)."""
    from flowmimic.export.bvh import write_bvh
    from flowmimic.export.smpl import write_aist_pkl

    if path.suffix.lower() == ".bvh":
        write_bvh(path, joints, fps)
    else:
        write_aist_pkl(path, joints, fps, data)


def write_motion(path: str | Path, motion: GeneratedMotion, params: Params, title: str = "") -> None:
    """Write one motion in the format of `path`'s extension (see the module docstring)."""
    path = Path(path)
    kind = path.suffix.lower()
    try:
        if kind == ".npy":
            save_npy(path, motion.joints)
        elif kind == ".npz":
            save_npz(path, joints=motion.joints, features=motion.features, fps=np.float32(motion.fps),
                     domain=np.str_(motion.domain), genre=np.int64(motion.genre_id),
                     genre_name=np.str_(genre_name(motion.genre_id)), source=np.str_(motion.source),
                     checkpoint_sha256=np.str_(motion.checkpoint_sha256), canonical=np.bool_(motion.canonical))
        elif kind == ".gif":
            from flowmimic.viz import animate_sequence

            stride = max(1, math.ceil(motion.joints.shape[0] / params.evaluate.gif_frames))
            animate_sequence(motion.joints[::stride], path, motion.fps / stride, title=title or path.name)
        elif kind in EXPORTERS:
            write_export(path, motion.joints, motion.fps, params.data)
        else:
            output_paths(path, 1)                                 # raises the unsupported-type error
    except OSError as e:
        raise DataError(path, f"cannot write ({e.strerror or e})", "unwritable") from e


def write_motions(out: str | Path, motions: Sequence[GeneratedMotion], params: Params, title: str = "") -> list[Path]:
    """Write `motions` to OUT (one) or OUT_000.ext... (several); returns the paths written."""
    paths = output_paths(out, len(motions))
    for p, m in zip(paths, motions):
        write_motion(p, m, params, title)
    return paths
