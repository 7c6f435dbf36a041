"""Readers of the raw datasets (AIST++, MVHumanNet) and the demo dataset generator.

`read_sequence(path, params)` reads one native sequence whatever its dataset (for the CLI and
plots); the cache stage calls the dataset readers directly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from flowmimic.errors import DataError
from flowmimic.params import DataParams, Params
from flowmimic.sources.common import RawSequence


class SmplxJoints:
    """SMPL joints through smplx's own forward pass (`data.joints_backend: smplx`), in chunks.

    Picklable (the smplx model is built lazily in each process), so the cache's pool can use it.
    """

    def __init__(self, model_dir: str, gender: str, chunk: int = 1024) -> None:
        self.model_dir, self.gender, self.chunk = model_dir, gender, chunk
        self._model = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}

    def __call__(self, poses: Tensor, transl: Tensor) -> Tensor:
        """poses (N, 24, 3) axis-angle, transl (N, 3) -> joints (N, 24, 3) float64."""
        from flowmimic.body.smpl_model import load_model_cached

        if self._model is None:
            self._model = load_model_cached(self.model_dir, self.gender).to_smplx(self.chunk, torch.float64)
        out = []
        with torch.no_grad():
            for s in range(0, poses.shape[0], self.chunk):
                p, t = poses[s:s + self.chunk].double(), transl[s:s + self.chunk].double()
                n = p.shape[0]
                pad = self.chunk - n                  # smplx's betas buffer is sized for `chunk` rows
                p = torch.cat((p, p.new_zeros(pad, 24, 3)))
                t = torch.cat((t, t.new_zeros(pad, 3)))
                res = self._model(global_orient=p[:, 0], body_pose=p[:, 1:].reshape(-1, 69), transl=t)
                out.append(res.joints[:n, :24])
        return torch.cat(out)


def aist_reader_args(data: DataParams) -> dict:
    """Keyword arguments for `aist.read_sequence`: the rest skeleton and, if asked, smplx's forward pass."""
    from flowmimic.body.smpl_model import rest_joints_for

    rest = rest_joints_for(data.smpl_model_dir, data.aist.gender)
    joints_fn = SmplxJoints(data.smpl_model_dir, data.aist.gender) if data.joints_backend == "smplx" else None
    return {"rest_joints": rest, "joints_fn": joints_fn}


def read_sequence(path: str | Path, params: Params) -> RawSequence:
    """An AIST++ `motions/<name>.pkl` or a MVHumanNet `<part>/<sequence>[/smpl_param]` folder."""
    from flowmimic.sources import aist, mvhumannet

    path = Path(path)
    if path.is_file() and path.suffix == ".pkl" and path.parent.name != mvhumannet.PARAM_DIR:
        return aist.read_sequence(path, params.data, **aist_reader_args(params.data))
    if path.is_dir():
        seq_dir = path.parent if path.name == mvhumannet.PARAM_DIR else path
        if (seq_dir / mvhumannet.PARAM_DIR).is_dir():
            return mvhumannet.read_sequence(seq_dir.parent.parent, f"{seq_dir.parent.name}/{seq_dir.name}", params.data)
    raise DataError(path, "not an AIST++ motion .pkl nor a MVHumanNet sequence folder (with smpl_param/)", "unknown")
