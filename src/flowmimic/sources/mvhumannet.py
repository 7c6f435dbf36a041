"""MVHumanNet reader: per-frame `smpl_param/*.pkl` -> aligned SMPL-22 joints at `data.fps`.

Native layout (MVHumanNet, Xiong et al. CVPR 2024)::

    <mvh_root>/<part>/<sequence>/smpl_param/<frame>.pkl

One pickle per released frame (every 5th frame of the 25/30 fps video, so about 5-6 fps), ordered
by the number in the file name. Each is a dict of torch tensors: `joints` (1, 45, 3) in metres
(the first 24 in SMPL order; we use the first 22), `global_orient` (1, 1, 3, 3), `body_pose`
(1, 23, 3, 3), `betas` (1, 10), `vertices` (1, 6890, 3), `faces`, `transl` (None). Only `joints`
is decoded (see `load_frame_joints`). Holes in the frame numbering are interpolated over when shorter than
`data.mvh.max_gap_s` (and noted); longer ones skip the sequence.
"""

from __future__ import annotations

import re
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from flowmimic.body.skeleton import N_JOINTS, N_SMPL_JOINTS
from flowmimic.errors import DataError
from flowmimic.io import safe_load_pickle
from flowmimic.params import DataParams
from flowmimic.sources.common import (RawSequence, align, canonical_rotation, check_finite, numeric_array,
                                      resample)

PARAM_DIR = "smpl_param"
_NUMBER = re.compile(r"(\d+)")


def scan_sequences(mvh_root: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """Every `<part>/<sequence>` folder of the root: (ids with a smpl_param folder, sorted; dropped ones).

    A dropped entry is `{"id", "reason", "message"}`: a part or sequence that is a symlink that
    cannot be followed (a loop: "unreadable", dangling: "missing"), a sequence without
    `smpl_param/` ("missing") or whose `smpl_param` is not a folder ("not_a_folder"). Hidden
    entries (`.unpacked/`, ...) and plain files beside the folders are not sequences.
    """
    root = Path(mvh_root)
    if not root.is_dir():
        raise DataError(root, "MVHumanNet root folder not found (check data.mvh_root)", "missing")
    ids: list[str] = []
    dropped: list[dict[str, str]] = []

    def drop(seq_id: str, reason: str, message: str) -> None:
        dropped.append({"id": seq_id, "reason": reason, "message": message})

    def folders(parent: Path, prefix: str) -> list[tuple[str, Path]]:
        """Sub-folders of `parent` by name; unfollowable symlinks are dropped with their errno."""
        out = []
        try:
            entries = sorted(parent.iterdir())
        except OSError as e:
            if not prefix:
                raise DataError(parent, f"cannot list the MVHumanNet root ({e.strerror})", "unreadable") from e
            drop(prefix.rstrip("/"), "unreadable", f"{parent}: cannot list the folder ({e.strerror})")
            return out
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = stat.S_ISDIR(entry.stat().st_mode)   # follows symlinks: a loop raises ELOOP
            except FileNotFoundError:
                drop(f"{prefix}{entry.name}", "missing", f"{entry}: a symlink to nothing")
                continue
            except OSError as e:
                drop(f"{prefix}{entry.name}", "unreadable", f"{entry}: cannot open ({e.strerror})")
                continue
            if is_dir:
                out.append((entry.name, entry))
        return out

    for part, part_dir in folders(root, ""):
        for name, seq_dir in folders(part_dir, f"{part}/"):
            seq_id, param = f"{part}/{name}", seq_dir / PARAM_DIR
            if param.is_dir():
                ids.append(seq_id)
            elif param.exists() or param.is_symlink():
                drop(seq_id, "not_a_folder", f"{param}: not a folder of frame files")
            else:
                drop(seq_id, "missing", f"{seq_dir}: no {PARAM_DIR}/ folder")
    return sorted(ids), dropped


def list_sequences(mvh_root: str | Path) -> list[str]:
    """Sequence ids "<part>/<sequence>" that have a smpl_param folder, sorted (`scan_sequences` says why not)."""
    return scan_sequences(mvh_root)[0]


def sequence_dir(mvh_root: str | Path, seq_id: str) -> Path:
    return Path(mvh_root) / seq_id / PARAM_DIR


def performer_of(seq_id: str, performer_regex: str) -> str:
    """Performer id from the sequence folder name via `data.mvh.performer_regex`."""
    name = seq_id.split("/")[-1]
    m = re.search(performer_regex, name)
    if m is None or not m.group("performer"):
        raise DataError(seq_id, f"data.mvh.performer_regex {performer_regex!r} does not match the folder name "
                        f"{name!r}", "bad_name")
    return m.group("performer")


def frame_files(param_dir: str | Path) -> tuple[list[Path], np.ndarray]:
    """The frame pickles of a sequence ordered by their number, and those numbers."""
    param_dir = Path(param_dir)
    if not param_dir.is_dir():
        raise DataError(param_dir, "sequence folder not found", "missing")
    files, numbers = [], []
    for f in param_dir.glob("*.pkl"):
        found = _NUMBER.findall(f.stem)
        if not found:
            raise DataError(f, "frame file name holds no frame number", "bad_name")
        files.append(f)
        numbers.append(int(found[-1]))
    if not files:
        raise DataError(param_dir, "no frame .pkl files", "empty")
    order = np.argsort(numbers, kind="stable")
    nums = np.asarray(numbers)[order]
    if len(np.unique(nums)) != len(nums):
        raise DataError(param_dir, "two frame files share a frame number", "invalid")
    return [files[i] for i in order], nums


def load_frame_joints(path: str | Path) -> torch.Tensor:
    """(22, 3) float64 joints of one frame file.

    Only `joints` is decoded: the frame's other tensors (vertices, pose matrices, ...) are checked
    for forbidden globals like the rest of the stream but their storages are never opened.
    """
    raw = safe_load_pickle(path, decode=("joints",))
    if "joints" not in raw:
        raise DataError(path, f"missing key 'joints' (has: {sorted(map(str, raw))})", "missing_key")
    j = numeric_array(raw["joints"], path, "joints")
    shape = j.shape
    if j.ndim == 3 and j.shape[0] == 1:
        j = j[0]
    if j.ndim != 2 or j.shape[1] != 3 or j.shape[0] < N_SMPL_JOINTS:
        raise DataError(path, f"'joints' must be (1, 45, 3) (at least 24 SMPL joints), got {shape}", "bad_shape")
    return torch.from_numpy(j[:N_JOINTS])


def read_sequence(mvh_root: str | Path, seq_id: str, data: DataParams) -> RawSequence:
    """One MVHumanNet sequence -> `RawSequence` at `data.fps`, aligned to the y-up frame."""
    param_dir = sequence_dir(mvh_root, seq_id)
    performer = performer_of(seq_id, data.mvh.performer_regex)
    files, numbers = frame_files(param_dir)
    if len(files) < 2:
        raise DataError(param_dir, f"only {len(files)} frame file(s)", "too_short")
    diffs = np.diff(numbers)
    step = Counter(diffs.tolist()).most_common(1)[0][0]      # the release stride (5 for MVHumanNet)
    times = torch.from_numpy((numbers - numbers[0]) / step / data.mvh.fps)
    notes: list[str] = []
    if (diffs != step).any():
        if (diffs % step).any():
            raise DataError(param_dir, f"irregular frame numbering (stride {step}, steps {sorted(set(diffs.tolist()))})",
                            "irregular")
        gap_s = float(diffs.max() / step / data.mvh.fps)     # time between the frames around the hole
        missing = int((diffs // step - 1).sum())
        if gap_s > data.mvh.max_gap_s:
            raise DataError(param_dir, f"{missing} missing frame file(s), the longest hole {gap_s:.2f} s > "
                            f"data.mvh.max_gap_s={data.mvh.max_gap_s}", "gap")
        notes.append(f"interpolated over {missing} missing frame file(s) (longest hole {gap_s:.2f} s)")
    joints = torch.stack([load_frame_joints(f) for f in files])                 # (T, 22, 3)
    check_finite(joints, param_dir, [f.name for f in files])
    joints = align(joints, canonical_rotation(data.zup_to_yup, data.mvh.axis_remap))
    joints = resample(joints, times, data.fps)
    return RawSequence(id=seq_id, domain="mvh", genre_id=0, performer=performer, joints=joints.to(torch.float32),
                       fps=float(data.fps), source=str(param_dir), notes=tuple(notes))
