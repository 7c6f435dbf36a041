"""`flowmimic export IN OUT`: a joints or 263-D features .npy -> a BVH file or an AIST++ SMPL .pkl.

IN is joints (T, 22, 3) in metres, y-up, at `fps` (default data.fps), or HumanML3D features
(N, 263), whose joints `features_to_joints` recovers (HumanML3D's canonical frame: the motion
starts at the origin facing +z). OUT's extension picks the format: `.bvh` (`export.bvh`) or `.pkl`
(`export.smpl`, AIST++'s motion format at 60 fps). Every problem is a one-line `DataError` naming
the file at fault, raised before anything is written; outputs are written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flowmimic.body.skeleton import N_JOINTS
from flowmimic.errors import DataError
from flowmimic.export.bvh import Units, write_bvh
from flowmimic.export.ik import Skeleton
from flowmimic.export.smpl import write_aist_pkl
from flowmimic.features.convert import load_npy, nonfinite_frames
from flowmimic.features.humanml3d import features_to_joints
from flowmimic.features.layout import DIM
from flowmimic.params import Params

FORMATS: tuple[str, ...] = (".bvh", ".pkl")


def load_motion_npy(path: str | Path) -> np.ndarray:
    """(T, 22, 3) float64 joints from a joints .npy (T, 22, 3) or a features .npy (N, 263)."""
    path = Path(path)
    arr = load_npy(path)
    if arr.ndim == 3 and arr.shape[1:] == (N_JOINTS, 3) and arr.shape[0] >= 1:
        where = nonfinite_frames(arr, 3)
        if where is not None:
            raise DataError(path, f"joints contain NaN/Inf {where}", "nan")
        return arr.astype(np.float64)
    if arr.ndim == 2 and arr.shape[1] == DIM and arr.shape[0] >= 1:
        where = nonfinite_frames(arr, 2)
        if where is not None:
            raise DataError(path, f"features contain NaN/Inf {where}", "nan")
        return features_to_joints(arr.astype(np.float64)).numpy()
    raise DataError(path, f"expected joints (T, {N_JOINTS}, 3) or features (N, {DIM}) with at least one "
                    f"frame, got shape {arr.shape}", "bad_shape")


def export_file(input: str | Path, output: str | Path, params: Params, *, fps: float | None = None,
                skeleton: Skeleton = "median", units: Units = "m") -> Path:
    """Export one motion file (see the module docstring); returns `output`.

    Args:
        fps: frame rate of IN (default params.data.fps).
        skeleton, units: BVH only (`export.bvh.write_bvh`); the .pkl poses SMPL's rest skeleton
            (params.data.smpl_model_dir, else the built-in one) in AIST++'s axes and metres.
    Raises:
        DataError: naming IN (missing, unreadable, wrong shape, NaN) or OUT (unknown extension,
            not writable).
    """
    input, output = Path(input), Path(output)
    kind = output.suffix.lower()
    if kind not in FORMATS:
        raise DataError(output, f"output must end in {' or '.join(FORMATS)}, got {kind or 'no extension'!r}",
                        "invalid")
    rate = float(params.data.fps if fps is None else fps)
    if not (np.isfinite(rate) and rate > 0):
        raise DataError(input, f"frame rate must be positive, got {rate}", "invalid")
    joints = load_motion_npy(input)
    try:
        if kind == ".bvh":
            return write_bvh(output, joints, rate, skeleton=skeleton, units=units)
        return write_aist_pkl(output, joints, rate, params.data)
    except OSError as e:
        where = f" at {e.filename}" if e.filename and str(e.filename) != str(output) else ""
        raise DataError(output, f"cannot write the output ({e.strerror or e}{where})", "unwritable") from e


__all__ = ["FORMATS", "export_file", "load_motion_npy"]
