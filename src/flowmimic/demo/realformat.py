"""Full-size, real-format benchmark data: MVHumanNet frames as the dataset ships them, AIST++ at its real lengths.

The default demo (`demo.dataset.write_demo`) writes light MVHumanNet frames (no `vertices`, `faces`
or pose matrices), so anything timed on it misses most of what a real frame costs to read. This
module writes the same demo motions in the real format, as measured on a released frame
(`/work/shared/mvhumannet_frame_format.md`): one plain `pickle.dump(dict, protocol=4)` of, in order,

    transl None | global_orient (1,1,3,3) | body_pose (1,23,3,3) | betas (1,10) | vertices (1,6890,3)
    | joints (1,45,3) | full_pose (1,24,3,3) | v_shaped None | faces uint32 (13776,3)

with float32 torch tensors pickled as torch pickles them (each storage an embedded `torch.save`
archive behind `torch.storage._load_from_bytes`, six per frame) and `faces` a numpy array: ~250 KB
per frame. Joints and rotations come from the demo synthesiser; the vertices are points scattered
around the joints (their values are never read, only their bytes count) and the faces a fixed
random triangle list. AIST++ motions get the real dataset's lengths (7-48 s at 60 fps).

Used by benchmarks and tests only; the default demo run never writes these files. Plain pickling
of tensors embeds storage addresses, so unlike the default demo these files are not byte-identical
from run to run (their decoded values are).
"""

from __future__ import annotations

import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowmimic.demo.dataset import DemoSummary, write_demo
from flowmimic.params import Params

SMPL_VERTICES = 6890
SMPL_FACES = 13776
FRAME_PROTOCOL = 4                      # the released frames are protocol-4 pickles
AIST_SECONDS = (7.0, 48.0)              # AIST++'s shortest and longest sequence
# The real frame's keys in file order, and the shape and dtype of each (None: the value is None).
FRAME_FORMAT: dict[str, tuple[tuple[int, ...], str] | None] = {
    "transl": None,
    "global_orient": ((1, 1, 3, 3), "torch.float32"),
    "body_pose": ((1, 23, 3, 3), "torch.float32"),
    "betas": ((1, 10), "torch.float32"),
    "vertices": ((1, SMPL_VERTICES, 3), "torch.float32"),
    "joints": ((1, 45, 3), "torch.float32"),
    "full_pose": ((1, 24, 3, 3), "torch.float32"),
    "v_shaped": None,
    "faces": ((SMPL_FACES, 3), "numpy.uint32"),
}


@lru_cache(maxsize=1)
def _mesh() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Fixed (vertex -> joint index, vertex offset from that joint, faces) of the stand-in mesh."""
    g = torch.Generator().manual_seed(6890)
    owner = torch.arange(SMPL_VERTICES) % 24
    offsets = 0.08 * torch.randn(SMPL_VERTICES, 3, generator=g)
    faces = torch.randint(SMPL_VERTICES, (SMPL_FACES, 3), generator=g).numpy().astype(np.uint32)
    return owner, offsets, faces


def real_frame(frame: dict[str, Any]) -> dict[str, Any]:
    """A demo frame dict (joints, global_orient, body_pose, betas, transl) -> the real frame's dict."""
    owner, offsets, faces = _mesh()
    joints = frame["joints"]
    points = joints.reshape(-1, 3)
    vertices = (points[owner % points.shape[0]] + offsets).reshape(1, SMPL_VERTICES, 3).float()
    full_pose = torch.cat([frame["global_orient"].reshape(1, 1, 3, 3), frame["body_pose"].reshape(1, 23, 3, 3)], 1)
    return {"transl": None, "global_orient": frame["global_orient"], "body_pose": frame["body_pose"],
            "betas": frame["betas"], "vertices": vertices, "joints": joints, "full_pose": full_pose.float(),
            "v_shaped": None, "faces": faces.copy()}


def real_frame_bytes(frame: dict[str, Any]) -> bytes:
    """The file of one real-format frame: a plain protocol-4 pickle, as MVHumanNet's are."""
    return pickle.dumps(real_frame(frame), protocol=FRAME_PROTOCOL)


def write_real_format(params: Params, root: str | Path | None = None) -> DemoSummary:
    """The demo tree of `params.demo`'s sizes with real-format MVHumanNet frames and AIST++ motions of
    real length (`AIST_SECONDS`, whatever `demo.aist_seconds` says), in the native layouts."""
    demo = params.demo.model_copy(update={"aist_seconds": list(AIST_SECONDS)})
    return write_demo(params.model_copy(update={"demo": demo}), root, encode_frame=real_frame_bytes)


__all__ = ["AIST_SECONDS", "FRAME_FORMAT", "SMPL_FACES", "SMPL_VERTICES", "real_frame", "real_frame_bytes",
           "write_real_format"]
