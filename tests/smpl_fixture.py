"""A procedural SMPL model file for tests and benchmarks (the licensed SMPL files are not shipped).

`write_procedural_smpl(path, fmt)` writes a file with the keys, shapes and dtypes of the official
`SMPL_{NEUTRAL,MALE,FEMALE}.pkl` (6890 vertices, 24 joints, 13776 faces, 10 betas, 207 pose
blend shapes), filled with seeded random but plausible values: vertices in blobs around the
built-in rest skeleton's joints, a J_regressor whose rows are sparse convex combinations of the
vertices around each joint, skinning weights on each vertex's joint and its parent.

Formats:
- ``"pkl_chumpy"`` mimics the official download byte for byte in kind: a protocol-2 pickle as
  Python 2 writes it (py2 ``str`` for keys and array buffers, ``numpy.core.multiarray`` and
  ``__builtin__`` globals), with ``v_template`` and ``shapedirs`` as objects of global
  ``chumpy.ch.Ch`` (state dict holding the array under ``'x'``) and ``J_regressor`` (plus an extra
  ``J_regressor_prior``) as ``scipy.sparse.csc.csc_matrix`` objects (state dict with
  data/indices/indptr/_shape/format). It is produced without chumpy or scipy: stand-in classes
  carry those module/class names and a small pickler subclass writes every global by name,
  so nothing is registered in ``sys.modules``.
- ``"pkl"``: a plain pickle of numpy arrays (dense J_regressor) that smplx's own loader reads.
- ``"npz"``: the same arrays in an ``.npz``.
"""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from flowmimic.body.skeleton import N_SMPL_JOINTS, SMPL_PARENTS, default_rest_joints
from flowmimic.io import write_bytes

N_VERTS = 6890
N_FACES = 13776
N_BETAS = 10
N_POSE_BASIS = 207  # 23 joints x 9 matrix entries
REGRESSOR_VERTS_PER_JOINT = 6

FORMATS = ("pkl_chumpy", "pkl", "npz")


def procedural_smpl_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """The arrays of a procedural SMPL model (official keys, shapes and dtypes), seeded."""
    rng = np.random.default_rng(seed)
    rest = default_rest_joints().double().numpy()                       # (24, 3)

    owner = rng.permutation(np.arange(N_VERTS) % N_SMPL_JOINTS)          # joint each vertex hugs
    v_template = rest[owner] + rng.normal(0.0, 0.04, (N_VERTS, 3))

    j_regressor = np.zeros((N_SMPL_JOINTS, N_VERTS))
    for j in range(N_SMPL_JOINTS):
        verts = rng.choice(np.flatnonzero(owner == j), REGRESSOR_VERTS_PER_JOINT, replace=False)
        j_regressor[j, verts] = rng.dirichlet(np.ones(REGRESSOR_VERTS_PER_JOINT))

    shapedirs = rng.normal(0.0, 0.004, (N_VERTS, 3, N_BETAS))
    shapedirs[:, :, 0] += 0.03 * (v_template - v_template.mean(0))     # beta 0 ~ overall size

    posedirs = rng.normal(0.0, 1e-3, (N_VERTS, 3, N_POSE_BASIS))

    weights = np.zeros((N_VERTS, N_SMPL_JOINTS))
    own = rng.uniform(0.6, 1.0, N_VERTS)
    parent = np.array(SMPL_PARENTS)[owner]
    rows = np.arange(N_VERTS)
    weights[rows, owner] = np.where(parent < 0, 1.0, own)
    has_parent = parent >= 0
    weights[rows[has_parent], parent[has_parent]] += 1.0 - own[has_parent]

    kintree = np.stack([np.array(SMPL_PARENTS, dtype=np.int64), np.arange(N_SMPL_JOINTS)])
    kintree[0, 0] = 4294967295  # the official files store the root's parent as uint32 -1

    faces = rng.integers(0, N_VERTS, (N_FACES, 3)).astype(np.uint32)
    return {
        "v_template": v_template, "shapedirs": shapedirs, "posedirs": posedirs,
        "J_regressor": j_regressor, "kintree_table": kintree, "weights": weights, "f": faces,
    }


# ----------------------------------------------------------------------------- Python-2 style pickle


class _ChumpyCh:
    """Pickles as global ``chumpy.ch.Ch`` with chumpy's state dict (array under ``'x'``)."""

    __module__ = "chumpy.ch"
    __qualname__ = "Ch"

    def __init__(self, x: np.ndarray) -> None:
        self.__dict__.update({"x": x, "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {}})


class _CscMatrix:
    """Pickles as global ``scipy.sparse.csc.csc_matrix`` with old scipy's state dict."""

    __module__ = "scipy.sparse.csc"
    __qualname__ = "csc_matrix"

    def __init__(self, dense: np.ndarray) -> None:
        cols, rows = np.nonzero(dense.T)                     # column-major order, as CSC stores
        indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=dense.shape[1]))])
        self.__dict__.update({
            "_shape": dense.shape, "maxprint": 50, "format": "csc",
            "data": dense[rows, cols], "indices": rows.astype(np.int32),
            "indptr": indptr.astype(np.int32),
        })


# Python 3 module names -> the names a Python 2 / numpy 1.x pickle carries.
_PY2_MODULES = {"builtins": "__builtin__", "copyreg": "copy_reg",
                "numpy._core.multiarray": "numpy.core.multiarray"}


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Protocol-2 pickler writing str/bytes as py2 ``str`` and every global by its name.

    Writing globals by name (instead of checking they import) is what lets the stand-in classes
    above pickle as chumpy/scipy classes without those packages or fake modules.
    """

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def _save_py2_str(self, data: bytes, obj: Any) -> None:
        n = len(data)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + struct.pack("<B", n) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + data)
        self.memoize(obj)

    def save_bytes(self, obj: bytes) -> None:
        self._save_py2_str(obj, obj)

    def save_str(self, obj: str) -> None:
        self._save_py2_str(obj.encode("latin1"), obj)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = _PY2_MODULES.get(obj.__module__, obj.__module__)
        name = name or obj.__qualname__
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[type] = save_global


def official_style_pickle_bytes(obj: Any) -> bytes:
    """`obj` pickled as Python 2 would (protocol 2); see `_Py2Pickler`."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


# ----------------------------------------------------------------------------- files


def write_procedural_smpl(path: str | Path, fmt: str = "pkl_chumpy", seed: int = 0) -> Path:
    """Write a procedural SMPL model file at `path` in format `fmt` (see the module docstring)."""
    path = Path(path)
    arrays = procedural_smpl_arrays(seed)
    if fmt == "pkl_chumpy":
        obj: dict[str, Any] = dict(arrays)
        obj["v_template"] = _ChumpyCh(arrays["v_template"])
        obj["shapedirs"] = _ChumpyCh(arrays["shapedirs"])
        obj["J_regressor"] = _CscMatrix(arrays["J_regressor"])
        # Extra keys the official files carry; readers must ignore them.
        obj["J_regressor_prior"] = _CscMatrix(arrays["J_regressor"])
        obj["J"] = arrays["J_regressor"] @ arrays["v_template"]
        obj["bs_style"], obj["bs_type"] = "lbs", "lrotmin"
        data = official_style_pickle_bytes(obj)
    elif fmt == "pkl":
        data = pickle.dumps(arrays, protocol=4)
    elif fmt == "npz":
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = buf.getvalue()
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    write_bytes(path, data)
    return path
