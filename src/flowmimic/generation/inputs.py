"""Reading a generation command's IN: any of the kinds FlowMimic knows, as model-ready features.

IN may be a joints `.npy` (T, 22, 3) in metres, y-up, SMPL order (at `fps`, default data.fps,
resampled to data.fps); a 263-D features `.npy` (N, 263) at data.fps; an AIST++ motion `.pkl`; or a
MVHumanNet sequence folder. Raw files go through `flowmimic.sources.read_sequence`, which aligns
them exactly as the cache does. The capture domain is inferred from the kind (AIST++ `.pkl` ->
aist, MVHumanNet folder -> mvh, a `.npy` -> aist, since nothing in it says where it came from) and
can be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from flowmimic.body.skeleton import N_JOINTS
from flowmimic.errors import ConfigError, DataError
from flowmimic.features.convert import load_npy, nonfinite_frames
from flowmimic.features.humanml3d import joints_to_features
from flowmimic.features.layout import DIM
from flowmimic.params import Params
from flowmimic.taxonomy import DOMAINS, UNKNOWN_GENRE, parse_domain

NPY_DEFAULT_DOMAIN = "aist"


@dataclass(frozen=True)
class MotionInput:
    """One input motion at data.fps.

    joints: (T, 22, 3) float32 as read (None for a features input, which has no frame to restore).
    features: (T-1, 263) float32 (a features input: (N, 263) as given), raw (not normalised).
    """

    source: str
    kind: str               # "joints" | "features" | "aist" | "mvh"
    domain: str             # "aist" | "mvh"
    genre_id: int           # the input's own genre (AIST++ file names carry it), else 0
    fps: float
    features: Tensor
    joints: Tensor | None


def _read_npy(path: Path, params: Params, fps: float | None) -> tuple[str, Tensor]:
    arr = load_npy(path)
    rate = float(params.data.fps) if fps is None else float(fps)
    if arr.ndim == 3 and arr.shape[1:] == (N_JOINTS, 3):
        where = nonfinite_frames(arr, 3)
        if where is not None:
            raise DataError(path, f"joints contain NaN/Inf {where}", "nan")
        joints = torch.from_numpy(arr).to(torch.float32)
        if rate != params.data.fps:
            from flowmimic.sources.common import resample

            times = torch.arange(joints.shape[0], dtype=torch.float64) / rate
            joints = resample(joints, times, float(params.data.fps), src_fps=rate)
        if joints.shape[0] < 2:
            raise DataError(path, f"needs at least 2 frames at {params.data.fps} fps, got {joints.shape[0]}",
                            "too_short")
        return "joints", joints
    if arr.ndim == 2 and arr.shape[1] == DIM:
        where = nonfinite_frames(arr, 2)
        if where is not None:
            raise DataError(path, f"features contain NaN/Inf {where}", "nan")
        if arr.shape[0] < 1:
            raise DataError(path, "features hold no frame", "too_short")
        if rate != params.data.fps:
            raise DataError(path, f"263-D features must be at data.fps ({params.data.fps}), --fps says {rate:g}",
                            "bad_fps")
        return "features", torch.from_numpy(arr).to(torch.float32)
    raise DataError(path, f"expected joints (T, {N_JOINTS}, 3) or 263-D features (N, {DIM}), got shape {arr.shape}",
                    "bad_shape")


def read_input(path: str | Path, params: Params, fps: float | None = None, domain: str | None = None) -> MotionInput:
    """Read IN (see the module docstring) at data.fps, with its features.

    Args:
        fps: frame rate of a `.npy` input (default data.fps); raw inputs carry their own.
        domain: "aist" | "mvh" to override the domain inferred from the kind.
    Raises:
        DataError naming the file for missing, unreadable, wrongly shaped or non-finite input;
        ConfigError for an unknown domain.
    """
    path = Path(path)
    if domain is not None:
        try:
            parse_domain(domain)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        domain = domain.lower()
    if not path.exists():
        raise DataError(path, "file not found", "missing")
    genre = UNKNOWN_GENRE
    if path.is_file() and path.suffix.lower() == ".npy":
        kind, data = _read_npy(path, params, fps)
        inferred = NPY_DEFAULT_DOMAIN
        joints = data if kind == "joints" else None
    else:
        from flowmimic.sources import read_sequence

        seq = read_sequence(path, params)
        kind, inferred, genre, joints = seq.domain, seq.domain, seq.genre_id, seq.joints.to(torch.float32)
        if joints.shape[0] < 2:
            raise DataError(path, f"needs at least 2 frames at {params.data.fps} fps, got {joints.shape[0]}",
                            "too_short")
    if joints is not None:
        try:
            features = joints_to_features(joints, params.features.feet_threshold)
        except ValueError as e:
            raise DataError(path, str(e), "invalid") from e
    else:
        features = data
    assert inferred in DOMAINS
    return MotionInput(source=str(path), kind=kind, domain=domain or inferred, genre_id=genre,
                       fps=float(params.data.fps), features=features, joints=joints)

