"""What every source reader shares: the sequence record, alignment, resampling, sanity checks.

A reader turns one native sequence into a `RawSequence`: SMPL-22 joints (T, 22, 3) in metres,
y-up (HumanML3D's frame), root-centred on the first frame's pelvis, at `data.fps`.

Alignment is data, not code: each source has one 3x3 rotation (its `axis_remap`, native -> z-up,
from the seed) and all share `zup_to_yup` (HumanML3D's AMASS z-up -> y-up). Both come from params.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from flowmimic.body.skeleton import PELVIS
from flowmimic.errors import DataError


@dataclass(frozen=True)
class RawSequence:
    """One aligned sequence, ready for feature extraction."""

    id: str                 # AIST++: the motion name; MVHumanNet: "<part>/<sequence>"
    domain: str             # "aist" | "mvh"
    genre_id: int           # 0 unknown, 1..10 AIST++ genres (flowmimic.sources.aist.GENRES)
    performer: str          # AIST++ dancer "d04"; MVHumanNet performer id from the folder name
    joints: Tensor          # (T, 22, 3) float32, metres, y-up, root-centred, at `fps`
    fps: float
    source: str             # the native file or folder it came from
    notes: tuple[str, ...] = field(default=())   # non-fatal findings (e.g. interpolated gaps)


def numeric_array(value: Any, source: str | Path, key: str) -> np.ndarray:
    """`value` (numpy array, torch tensor, nested list of numbers, a number) as a float64 array, or DataError.

    A wrong type (None, a string, objects) is reason "bad_type"; a ragged list "bad_shape".
    The caller checks the shape.
    """
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.is_complex() or value.dtype == torch.bool:
            raise DataError(source, f"'{key}' must hold real numbers, got a {value.dtype} tensor", "bad_type")
        return value.to(torch.float64).numpy()
    if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
        return np.asarray(value, dtype=np.float64)
    if not isinstance(value, (np.ndarray, list, tuple)):
        raise DataError(source, f"'{key}' must be an array of numbers, got {type(value).__name__}", "bad_type")
    try:
        arr = np.asarray(value)
    except ValueError as e:                # numpy refuses ragged nested lists
        raise DataError(source, f"'{key}' is a ragged list, not an array ({e})", "bad_shape") from None
    if arr.dtype.kind not in "fiu":
        raise DataError(source, f"'{key}' must be an array of numbers, got dtype {arr.dtype}", "bad_type")
    return arr.astype(np.float64)


def canonical_rotation(zup_to_yup: Sequence[Sequence[float]], axis_remap: Sequence[Sequence[float]]) -> Tensor:
    """(3, 3) float64 native -> y-up rotation: first the source's remap to z-up, then HumanML3D's z-up -> y-up."""
    return torch.tensor(zup_to_yup, dtype=torch.float64) @ torch.tensor(axis_remap, dtype=torch.float64)


def align(joints: Tensor, rotation: Tensor) -> Tensor:
    """Rotate native joints (..., T, J, 3) into the y-up frame and centre them on frame 0's pelvis."""
    out = joints.to(torch.float64) @ rotation.to(torch.float64).T
    return out - out[..., :1, PELVIS:PELVIS + 1, :]


def check_finite(joints: Tensor, source: str | Path, frame_names: Sequence[str] | None = None) -> None:
    """Raise DataError(reason="nan") naming the first offending frames."""
    bad = ~torch.isfinite(joints).reshape(joints.shape[0], -1).all(dim=1)
    if bool(bad.any()):
        idx = torch.nonzero(bad).flatten().tolist()
        where = [frame_names[i] for i in idx[:5]] if frame_names is not None else idx[:5]
        more = f" (+{len(idx) - 5} more)" if len(idx) > 5 else ""
        raise DataError(source, f"NaN/Inf joints in {len(idx)} of {joints.shape[0]} frames: {where}{more}", "nan")


def frame_step(src_fps: float, dst_fps: float) -> int | None:
    """k when `src_fps` is the integer multiple k of `dst_fps` (then resampling keeps every k-th frame), else None."""
    ratio = src_fps / dst_fps
    return int(round(ratio)) if abs(ratio - round(ratio)) < 1e-9 and round(ratio) >= 1 else None


def resample(joints: Tensor, times: Tensor, dst_fps: float, src_fps: float | None = None) -> Tensor:
    """Resample (T, J, 3) joints sampled at `times` (seconds, increasing) to `dst_fps`.

    Where the native rate is uniform and an integer multiple of `dst_fps`, keep every k-th frame
    (HumanML3D's rule: AIST++ 60 fps -> every 3rd frame). Otherwise interpolate with a cubic
    Hermite spline whose tangents are central differences (Catmull-Rom on non-uniform knots), which
    is smooth, passes through every sample, and copes with holes in the frame numbering.
    """
    step = frame_step(src_fps, dst_fps) if src_fps is not None else None
    if step is not None:
        return joints[::step]
    t = times.to(torch.float64)
    p = joints.to(torch.float64)
    if t.numel() < 2:
        return joints[:1]
    n_out = int(torch.floor((t[-1] - t[0]) * dst_fps + 1e-9).item()) + 1
    t_out = t[0] + torch.arange(n_out, dtype=torch.float64) / dst_fps
    # Tangents: central differences inside, one-sided at the ends.
    m = torch.empty_like(p)
    m[1:-1] = (p[2:] - p[:-2]) / (t[2:] - t[:-2]).view(-1, 1, 1)
    m[0] = (p[1] - p[0]) / (t[1] - t[0])
    m[-1] = (p[-1] - p[-2]) / (t[-1] - t[-2])
    k = torch.searchsorted(t, t_out, right=True).clamp(1, t.numel() - 1) - 1     # interval of each output
    h = (t[k + 1] - t[k]).view(-1, 1, 1)
    s = ((t_out - t[k]).view(-1, 1, 1) / h).clamp(0.0, 1.0)
    s2, s3 = s * s, s * s * s
    out = ((2 * s3 - 3 * s2 + 1) * p[k] + (s3 - 2 * s2 + s) * h * m[k]
           + (-2 * s3 + 3 * s2) * p[k + 1] + (s3 - s2) * h * m[k + 1])
    return out.to(joints.dtype)
