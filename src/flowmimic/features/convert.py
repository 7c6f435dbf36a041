"""File-level conversions behind `flowmimic features IN OUT` and `flowmimic joints IN OUT`.

Reads one .npy (never a pickle), checks its shape and values, converts with
`flowmimic.features.humanml3d`, and writes the result atomically. Every problem is a `DataError`
naming the input file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal

import numpy as np

from flowmimic.body.skeleton import N_JOINTS
from flowmimic.errors import DataError
from flowmimic.features.humanml3d import features_to_joints, joints_to_features
from flowmimic.features.layout import DIM
from flowmimic.io import save_npy


def load_npy(path: Path) -> np.ndarray:
    """A numeric .npy array (never a pickle); DataError naming `path` otherwise."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise DataError(path, "file not found", "missing") from e
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        # ValueError: a pickled object array, a bad header; OSError/EOFError: not .npy, truncated
        raise DataError(path, f"not a readable .npy array ({type(e).__name__}: {e})", "unreadable") from e
    if not isinstance(arr, np.ndarray):  # an .npz archive
        raise DataError(path, "expected a single .npy array, got an .npz archive", "unreadable")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(path, f"expected a numeric array, got dtype {arr.dtype}", "bad_dtype")
    return arr


def nonfinite_frames(arr: np.ndarray, frame_axis_from_end: int) -> str | None:
    """'at frames [...]' or 'in sequence i at frames [...]' (first 10) for NaN/Inf, None if finite.

    `frame_axis_from_end`: 3 for joints (..., T, 22, 3), 2 for features (..., N, 263)."""
    if np.isfinite(arr).all():
        return None
    bad = ~np.isfinite(arr).reshape(*arr.shape[: arr.ndim - frame_axis_from_end + 1], -1).all(-1)
    if bad.ndim == 1:
        return f"at frames {np.flatnonzero(bad)[:10].tolist()}"
    seq = int(np.flatnonzero(bad.any(-1))[0])
    return f"in sequence {seq} at frames {np.flatnonzero(bad[seq])[:10].tolist()}"


def convert_file(input: Path, output: Path, to: Literal["features", "joints"],
                 feet_threshold: float | None = None) -> None:
    """Convert a joints .npy to 263-D features, or a features .npy to joints.

    Args:
        input: for to="features", joints (T, 22, 3) or (N, T, 22, 3) in metres, y-up; for
            to="joints", features (N, 263) or (B, N, 263).
        output: .npy written atomically: features (T-1, 263) / (N, T-1, 263), or joints
            (N, 22, 3) / (B, N, 22, 3); float input keeps its dtype, integer input gives float32.
        to: "features" or "joints".
        feet_threshold: foot-contact threshold, required for to="features" (the CLI passes the
            params file's `features.feet_threshold`); unused for to="joints".
    Raises:
        DataError: the input is missing, unreadable, of the wrong shape, too short or non-finite.
    """
    input, output = Path(input), Path(output)
    arr = load_npy(input)
    if to == "features":
        if arr.ndim not in (3, 4) or arr.shape[-2:] != (N_JOINTS, 3):
            raise DataError(input, f"expected joints of shape (T, {N_JOINTS}, 3) or (N, T, {N_JOINTS}, 3), "
                            f"got {arr.shape}", "bad_shape")
        if arr.shape[-3] < 2:
            raise DataError(input, f"needs at least 2 frames, got {arr.shape[-3]}", "too_short")
        where = nonfinite_frames(arr, 3)
        if where is not None:
            raise DataError(input, f"joints contain NaN/Inf {where}", "nan")
        if feet_threshold is None:
            raise ValueError("to='features' needs feet_threshold (features.feet_threshold in params.yaml)")
        try:
            result = joints_to_features(arr, feet_threshold)
        except ValueError as e:
            raise DataError(input, str(e), "invalid") from e
    elif to == "joints":
        if arr.ndim not in (2, 3) or arr.shape[-1] != DIM or arr.shape[-2] < 1:
            raise DataError(input, f"expected features of shape (N, {DIM}) or (B, N, {DIM}), got {arr.shape}",
                            "bad_shape")
        where = nonfinite_frames(arr, 2)
        if where is not None:
            raise DataError(input, f"features contain NaN/Inf {where}", "nan")
        result = features_to_joints(arr)
    else:
        raise ValueError(f"to must be 'features' or 'joints', got {to!r}")
    save_npy(output, result.numpy())
