"""SMPL model files -> rest joints for the kinematic chain, and the bridge to `smplx`.

Reads the official `SMPL_{NEUTRAL,MALE,FEMALE}.pkl` (Python-2 pickles holding chumpy arrays and a
scipy sparse `J_regressor`) through `flowmimic.io.safe_load_pickle`, so neither chumpy nor scipy
is needed and nothing but arrays can be rebuilt; `.npz` conversions of the same files are read
with `np.load(allow_pickle=False)`. Both give the same float64 arrays, validated against SMPL's
layout (Loper et al., SIGGRAPH Asia 2015): 6890 vertices, 24 joints, 13776 faces, 207 pose blend
shapes, B shape blend shapes.

Joints need only the shape-dependent rest pose: SMPL's joints are `J_regressor @ (v_template +
shapedirs . betas)` (pose blend shapes move vertices, not joints), and both maps are linear, so
`SmplModel` folds the regressor into the template and shape space once ((24, 3) and (24, 3, B))
and never touches the mesh again. Posed joints then come from
`flowmimic.body.kinematics.smpl_forward_kinematics`. `SmplModel.to_smplx` builds `smplx.SMPL` from
the same arrays when the full mesh is wanted (smplx's own loader would need chumpy).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from flowmimic.body.kinematics import smpl_forward_kinematics
from flowmimic.body.skeleton import N_SMPL_JOINTS, SMPL_PARENTS, default_rest_joints
from flowmimic.errors import DataError
from flowmimic.io import safe_load_pickle

if TYPE_CHECKING:
    import smplx

log = logging.getLogger(__name__)

N_VERTICES = 6890
N_FACES = 13776
N_POSE_BASIS = 9 * (N_SMPL_JOINTS - 1)   # 207: one rotation matrix minus identity per body joint
GENDERS = ("neutral", "male", "female")

# Required keys and their shapes; None = any size (the number of betas: 10 in SMPL 1.0/1.1,
# 300 in some releases).
REQUIRED_SHAPES: dict[str, tuple[int | None, ...]] = {
    "v_template": (N_VERTICES, 3),
    "shapedirs": (N_VERTICES, 3, None),
    "posedirs": (N_VERTICES, 3, N_POSE_BASIS),
    "J_regressor": (N_SMPL_JOINTS, N_VERTICES),
    "kintree_table": (2, N_SMPL_JOINTS),
    "weights": (N_VERTICES, N_SMPL_JOINTS),
    "f": (N_FACES, 3),
}
_INT_KEYS = ("kintree_table", "f")


# ----------------------------------------------------------------------------- files


def _read_raw(path: Path) -> dict:
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except FileNotFoundError as e:
            raise DataError(path, "file not found", "missing") from e
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            raise DataError(path, f"unreadable .npz ({type(e).__name__}: {e})", "unreadable") from e
    obj = safe_load_pickle(path)
    if not isinstance(obj, dict):
        raise DataError(path, f"not an SMPL model file: holds a {type(obj).__name__}, "
                        "expected a dict of arrays", "invalid")
    return obj


def load_smpl_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The SMPL arrays of a model file (.pkl, chumpy or plain, or .npz), validated.

    Returns the keys of `REQUIRED_SHAPES` only (extra keys of the official files are dropped):
    float64 arrays, except `kintree_table` and `f` (int64). `J_regressor` is dense.
    Raises `DataError` naming `path` when the file is missing, unreadable or unsafe, a key is
    missing, an array has the wrong shape, or values are not finite.
    """
    path = Path(path)
    raw = _read_raw(path)
    out: dict[str, np.ndarray] = {}
    for key, shape in REQUIRED_SHAPES.items():
        if key not in raw:
            raise DataError(path, f"not an SMPL model file: missing key '{key}'", "missing_key")
        try:
            arr = np.asarray(raw[key], dtype=np.int64 if key in _INT_KEYS else np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(path, f"'{key}' is not a numeric array ({e})", "invalid") from e
        if arr.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, arr.shape)):
            want = "(" + ", ".join("B" if s is None else str(s) for s in shape) + ")"
            hint = ""
            if key == "J_regressor" and arr.ndim == 2 and arr.shape[0] != N_SMPL_JOINTS:
                hint = f" ({arr.shape[0]} joints: an SMPL-H/SMPL-X file? only SMPL is supported)"
            raise DataError(path, f"'{key}' has shape {arr.shape}, expected {want}{hint}", "bad_shape")
        if not np.isfinite(arr).all():
            raise DataError(path, f"'{key}' holds NaN or Inf values", "nan")
        out[key] = arr
    if out["shapedirs"].shape[2] == 0:
        raise DataError(path, "'shapedirs' has no shape components", "bad_shape")
    parents = out["kintree_table"][0].copy()
    parents[0] = -1  # stored as uint32 -1 (4294967295) in the official files
    children = out["kintree_table"][1].tolist()
    if tuple(parents.tolist()) != SMPL_PARENTS or children != list(range(N_SMPL_JOINTS)):
        raise DataError(path, f"'kintree_table' is not SMPL's kinematic tree: parents {parents.tolist()}",
                        "invalid")
    if out["f"].min() < 0 or out["f"].max() >= N_VERTICES:
        raise DataError(path, "'f' indexes vertices outside 0..6889", "invalid")
    return out


def model_file_names(gender: str) -> tuple[str, ...]:
    """File names tried for `gender`, in order: smplx's `SMPL_<GENDER>` (.npz first: no pickle),
    then the official download's `basicmodel_{m,f,neutral}_lbs_10_207_0_v1.{1,0}.0.pkl`."""
    g = gender.lower()
    if g not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
    short = {"male": "m", "female": "f", "neutral": "neutral"}[g]
    return (f"SMPL_{g.upper()}.npz", f"SMPL_{g.upper()}.pkl",
            f"basicmodel_{short}_lbs_10_207_0_v1.1.0.pkl", f"basicmodel_{short}_lbs_10_207_0_v1.0.0.pkl",
            f"basicModel_{short}_lbs_10_207_0_v1.0.0.pkl")


def find_model_file(model_dir: str | Path, gender: str) -> Path:
    """The model file for `gender` in `model_dir` (or its `smpl/` subfolder, smplx's layout).

    Tries the names of `model_file_names(gender)`. Raises `DataError` naming the folder and the
    names tried when the folder or every file is missing; `ValueError` for an unknown gender.
    """
    model_dir = Path(model_dir)
    names = model_file_names(gender)
    if not model_dir.is_dir():
        raise DataError(model_dir, "SMPL model folder not found (params.yaml: data.smpl_model_dir)",
                        "missing")
    for folder in (model_dir, model_dir / "smpl"):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise DataError(model_dir, f"no SMPL model file for gender '{gender.lower()}': looked for "
                    f"{', '.join(names)} here and in smpl/", "missing")


# ----------------------------------------------------------------------------- the model


@dataclass(frozen=True, eq=False)
class SmplModel:
    """An SMPL model's arrays and its joint-only shape space (float64 tensors, CPU).

    Attributes:
        path: the file it was read from.
        arrays: the validated numpy arrays (`load_smpl_arrays`), kept for `to_smplx`.
        joint_template: (24, 3) rest joints at zero shape, `J_regressor @ v_template`.
        joint_shapedirs: (24, 3, B) rest-joint blend shapes, `J_regressor @ shapedirs`.
    Tensors are shared, not copied: treat them as read-only.
    """

    path: Path
    arrays: dict[str, np.ndarray] = field(repr=False)
    joint_template: Tensor = field(repr=False)
    joint_shapedirs: Tensor = field(repr=False)

    @classmethod
    def from_file(cls, path: str | Path) -> SmplModel:
        """Load a model file (see `load_smpl_arrays`)."""
        path = Path(path)
        a = load_smpl_arrays(path)
        reg = a["J_regressor"]
        model = cls(
            path=path,
            arrays=a,
            joint_template=torch.from_numpy(reg @ a["v_template"]),
            joint_shapedirs=torch.from_numpy(np.einsum("jv,vcb->jcb", reg, a["shapedirs"])),
        )
        log.debug("loaded SMPL model %s (%d betas)", path, model.num_betas)
        return model

    @classmethod
    def from_dir(cls, model_dir: str | Path, gender: str) -> SmplModel:
        """Load the model for `gender` from a folder (see `find_model_file`)."""
        return cls.from_file(find_model_file(model_dir, gender))

    @property
    def num_betas(self) -> int:
        return int(self.joint_shapedirs.shape[-1])

    def rest_joints(self, betas: Tensor | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """Rest-pose joints for shape parameters.

        Args:
            betas: (..., B) with B <= `num_betas` (missing components are zero), or None for the
                template shape.
            dtype: result dtype when `betas` is None; otherwise the result has `betas`' dtype.
        Returns:
            (..., 24, 3) joints (or (24, 3) for None), on `betas`' device.
        """
        if betas is None:
            return self.joint_template.to(dtype)
        if betas.dim() == 0 or betas.shape[-1] > self.num_betas:
            raise ValueError(f"betas must be (..., B) with B <= {self.num_betas} for {self.path}, "
                             f"got {tuple(betas.shape)}")
        out_dtype = betas.dtype if betas.is_floating_point() else dtype
        n = betas.shape[-1]
        sd = self.joint_shapedirs[..., :n].to(betas.device)
        j = self.joint_template.to(betas.device) + torch.einsum("jcb,...b->...jc", sd, betas.double())
        return j.to(out_dtype)

    def joints(self, poses: Tensor, transl: Tensor | None = None, betas: Tensor | None = None) -> Tensor:
        """Posed joints, SMPL's 24 (what smplx's `SMPL(...).joints[:, :24]` gives, without the mesh).

        Args:
            poses: (..., 72) or (..., 24, 3) axis-angle, joint 0 the global orientation.
            transl: (..., 3) or None.
            betas: (..., B) or None; its leading dims broadcast against `poses`' (for poses
                (N, T, 72) and per-sequence betas (N, B) pass `betas[:, None]`).
        Returns:
            (..., 24, 3) joints in `poses`' dtype.
        """
        rest = self.rest_joints(betas, dtype=poses.dtype).to(device=poses.device, dtype=poses.dtype)
        return smpl_forward_kinematics(poses, rest, transl)

    def to_smplx(self, batch_size: int = 1, dtype: torch.dtype = torch.float32) -> smplx.SMPL:
        """`smplx.SMPL` built from this model's arrays (full mesh LBS; no chumpy needed).

        Its forward pass takes `global_orient` (batch_size, 3), `body_pose` (batch_size, 69),
        `betas` (batch_size, B) and `transl` (batch_size, 3), and returns vertices (batch_size,
        6890, 3) and joints (batch_size, 45, 3): SMPL's 24 then 21 vertex keypoints.
        """
        import smplx

        struct = smplx.utils.Struct(**self.arrays)
        # smplx print()s a warning for models with 10 betas; keep library output on logging.
        with contextlib.redirect_stdout(io.StringIO()) as captured:
            model = smplx.SMPL(str(self.path), data_struct=struct, batch_size=batch_size,
                               dtype=dtype, num_betas=self.num_betas)
        if captured.getvalue().strip():
            log.debug("smplx: %s", captured.getvalue().strip())
        return model


@functools.lru_cache(maxsize=8)
def _cached_model(path: str, mtime_ns: int, size: int) -> SmplModel:
    # mtime/size are part of the key so a replaced file is read again.
    return SmplModel.from_file(path)


def load_model_cached(model_dir: str | Path, gender: str) -> SmplModel:
    """`SmplModel.from_dir`, memoised per process (readers call this once per sequence)."""
    path = find_model_file(model_dir, gender)
    st = path.stat()
    return _cached_model(str(path), st.st_mtime_ns, st.st_size)


def rest_joints_for(
    model_dir: str | Path | None,
    gender: str,
    betas: Tensor | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Rest joints for a sequence: from the SMPL model file when a folder is configured.

    Args:
        model_dir: `data.smpl_model_dir`; None selects the built-in skeleton
            (`skeleton.default_rest_joints`), which has no shape space: `betas` are then ignored.
        gender: "male", "female" or "neutral" (which file to read).
        betas: (..., B) shape parameters or None.
        dtype: result dtype when `betas` is None or when no model folder is given.
    Returns:
        (24, 3), or (..., 24, 3) for batched betas.
    """
    if model_dir is None:
        rest = default_rest_joints(dtype)
        if betas is not None:
            log.debug("no SMPL model folder: betas ignored, using the built-in rest skeleton")
            rest = rest.to(betas.device).expand(*betas.shape[:-1], N_SMPL_JOINTS, 3)
        return rest
    return load_model_cached(model_dir, gender).rest_joints(betas, dtype=dtype)


__all__ = [
    "REQUIRED_SHAPES", "SmplModel", "find_model_file", "load_model_cached", "load_smpl_arrays",
    "model_file_names", "rest_joints_for",
]
