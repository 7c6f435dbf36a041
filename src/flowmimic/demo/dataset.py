"""Writes the procedural demo dataset in the native AIST++ and MVHumanNet layouts.

The demo exercises the real readers end to end: the files below are what `sources.aist` and
`sources.mvhumannet` read from the real datasets, with the same keys, dtypes, units, rates, axis
conventions and naming. Motions come from `demo.dances` and `demo.studio` (canonical
frame, on the shared core in `demo.motion`) and are turned into each dataset's native frame
with the inverse of the reader's alignment (`canonical = R @ native`,
`R = data.zup_to_yup @ data.<source>.axis_remap`).

Layout under `demo.root`::

    aist/motions/<name>.pkl          plain pickle of numpy arrays: smpl_poses (N,72) float32,
                                     smpl_trans (N,3) float32 in capture units (metres x smpl_scaling),
                                     smpl_scaling (1,) float32 (90..100 per dancer), smpl_loss float;
                                     60 fps (data.aist.fps); name g{GG}_s{BM|FM}_cAll_d{NN}_m{GG}{0-5}_ch{NN}
    aist/splits/pose_{train,val,test}.txt   by dancer: every genre in each (demo.aist_{val,test}_dancers)
    aist/ignore_list.txt             two train sequences (one line with a trailing space, as the real file)
    mvh/part_XX/<performer>_<outfit>/smpl_param/<frame>.pkl
                                     one pickle of torch tensors per released frame (every 5th video
                                     frame, numbered by video frame: 0000, 0005, ...): joints (1,45,3)
                                     metres, global_orient (1,1,3,3), body_pose (1,23,3,3), betas (1,10),
                                     transl None
    manifest.json                    what was written: counts, splits, injected broken items and why

MVHumanNet's files also hold `vertices` (1,6890,3) and `faces`; the demo leaves them out (they
would make it ~100x larger and no reader uses them). Its pickles are written with a pickler that
serialises tensor storages in torch's zip format: the same globals as a plain `pickle.dump` of
tensors (`torch._utils._rebuild_tensor_v2`, `torch.storage._load_from_bytes`), but without the
memory addresses plain pickling embeds, so the same params give byte-identical files.

With `demo.inject_bad`, a few broken items are added, all listed in the splits so that they are
counted, not hidden: AIST++ a truncated pickle, a too-short sequence and NaN poses; MVHumanNet
NaN joints, a hole in the frame numbering longer than `data.mvh.max_gap_s`, a 1-file hole (to be
interpolated, not skipped) and a frame whose `joints` has the wrong shape.

Everything is written into a temporary sibling folder that replaces `demo.root` in one rename, so
a crash never leaves half a dataset; an existing `demo.root` is replaced only if it is an earlier
demo (holds `manifest.json`) or empty.
"""

from __future__ import annotations

import io
import logging
import math
import os
import pickle
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from flowmimic.body.rotation import axis_angle_to_matrix, matrix_to_axis_angle
from flowmimic.errors import ConfigError
from flowmimic.io import write_bytes, write_json, write_lines, write_text
from flowmimic.params import Params
from flowmimic.taxonomy import GENRES
from flowmimic.sources.common import canonical_rotation
from flowmimic.demo.dances import genre_tempo, synthesize_dances
from flowmimic.demo.motion import DanceSpec, MotionBatch, StudioSpec, single_thread, smpl45_joints
from flowmimic.demo.studio import synthesize_studio

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
MVH_RELEASE_STRIDE = 5        # MVHumanNet releases every 5th video frame
MVH_GENDER = "neutral"        # the demo's MVHumanNet bodies (its readers use the released joints only)
AIST_SCALING_RANGE = (90.0, 100.0)
N_BETAS = 10


def _rest_joints(params: Params, gender: str) -> torch.Tensor:
    """(24, 3) rest skeleton the readers will use (SMPL model file when configured, else built in)."""
    from flowmimic.body.smpl_model import rest_joints_for

    return rest_joints_for(params.data.smpl_model_dir, gender, dtype=torch.float32)


class _TensorPickler(pickle.Pickler):
    """Pickles tensors like plain `pickle` does, with storages in torch's deterministic zip format."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (torch.TypedStorage, torch.UntypedStorage)):
            buf = io.BytesIO()
            torch.save(obj, buf)
            return torch.storage._load_from_bytes, (buf.getvalue(),)
        return NotImplemented


def _tensor_pickle(obj: Any) -> bytes:
    buf = io.BytesIO()
    _TensorPickler(buf, protocol=pickle.DEFAULT_PROTOCOL).dump(obj)
    return buf.getvalue()


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))


def _randint(g: torch.Generator, hi: int) -> int:
    return int(torch.randint(hi, (), generator=g))


# ----------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class AistItem:
    """One planned AIST++ sequence."""

    name: str
    genre: str
    dancer: str           # "d07"
    spec: DanceSpec
    scaling: float        # smpl_scaling of the dancer
    loss: float           # smpl_loss (a fitting residual; any plausible float)


@dataclass(frozen=True)
class MvhItem:
    """One planned MVHumanNet sequence."""

    seq_id: str           # "<part>/<performer>_<outfit>", the reader's id
    performer: str
    spec: StudioSpec
    betas: tuple[float, ...]


def plan_aist(params: Params) -> list[AistItem]:
    """Every AIST++ sequence of the demo: genres x dancers x sequences, deterministic from demo.seed."""
    demo = params.demo
    g = torch.Generator().manual_seed(demo.seed)
    items = []
    for gi, genre in enumerate(GENRES):
        for k in range(demo.aist_dancers):
            number = gi * demo.aist_dancers + k + 1
            dancer = f"d{number:02d}"
            dancer_seed = _randint(g, 2**31 - 1)
            scaling = _uniform(g, *AIST_SCALING_RANGE)
            counts = {"sBM": 0, "sFM": 0}
            for j in range(demo.aist_sequences):
                situation = "sBM" if j % 2 == 0 else "sFM"
                counts[situation] += 1
                music = _randint(g, 6)
                name = f"{genre}_{situation}_cAll_{dancer}_m{genre[1:]}{music}_ch{counts[situation]:02d}"
                spec = DanceSpec(genre=genre, dancer_seed=dancer_seed, advanced=situation == "sFM",
                                 bpm=genre_tempo(genre, music), seconds=_uniform(g, *demo.aist_seconds),
                                 seed=_randint(g, 2**31 - 1))
                items.append(AistItem(name=name, genre=genre, dancer=dancer, spec=spec, scaling=scaling,
                                      loss=round(_uniform(g, 0.5, 3.0), 4)))
    return items


def plan_mvh(params: Params) -> list[MvhItem]:
    """Every MVHumanNet sequence of the demo: performers x outfits over the parts."""
    demo = params.demo
    g = torch.Generator().manual_seed(demo.seed + 1)
    ids = (torch.randperm(900_000, generator=g)[: demo.mvh_performers] + 100_000).tolist()
    items = []
    for i, pid in enumerate(ids):
        part = f"part_{i * demo.mvh_parts // demo.mvh_performers + 1:02d}"
        performer_seed = _randint(g, 2**31 - 1)
        betas = tuple(round(0.5 * float(b), 4) for b in torch.randn(N_BETAS, generator=g))
        for outfit in range(1, demo.mvh_outfits + 1):
            spec = StudioSpec(performer_seed=performer_seed, seconds=_uniform(g, *demo.mvh_seconds),
                              seed=_randint(g, 2**31 - 1))
            items.append(MvhItem(seq_id=f"{part}/{pid}_{outfit:02d}", performer=str(pid), spec=spec, betas=betas))
    return items


def split_aist(items: list[AistItem], params: Params) -> dict[str, list[str]]:
    """AIST++-style splits by dancer: per genre `demo.aist_test_dancers` dancers in test,
    `demo.aist_val_dancers` others in val, the rest in train (chosen with a generator seeded by demo.seed)."""
    demo = params.demo
    g = torch.Generator().manual_seed(demo.seed + 2)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for genre in GENRES:
        mine = [it for it in items if it.genre == genre]
        dancers = sorted({it.dancer for it in mine})
        order = [dancers[i] for i in torch.randperm(len(dancers), generator=g).tolist()]
        test = set(order[:demo.aist_test_dancers])
        val = set(order[demo.aist_test_dancers:demo.aist_test_dancers + demo.aist_val_dancers])
        for it in mine:
            splits["test" if it.dancer in test else "val" if it.dancer in val else "train"].append(it.name)
    return splits


# ----------------------------------------------------------------------------- native frames


def _to_native(poses: torch.Tensor, pelvis: torch.Tensor, rotation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical poses (..., 24, 3) and pelvis (..., 3) -> the native frame of `rotation` (canonical = R @ native).

    Returns native global-orientation matrices (..., 3, 3) and native pelvis positions (..., 3).
    """
    r = rotation.to(poses.dtype)
    root = r.T @ axis_angle_to_matrix(poses[..., 0, :])
    return root, pelvis @ r                                            # row vectors: R^T p


def aist_arrays(motion: MotionBatch, rotation: torch.Tensor, scaling: Sequence[float],
                loss: Sequence[float]) -> list[dict[str, Any]]:
    """Per sequence of `motion`, the dict of an AIST++ motion pickle in the native frame of `rotation`.

    Args:
        motion: canonical motions at AIST++'s frame rate.
        rotation: (3, 3) the source's canonical rotation (`sources.common.canonical_rotation`).
        scaling / loss: per sequence, the dancer's `smpl_scaling` and a `smpl_loss` value.
    """
    root, pelvis_n = _to_native(motion.poses, motion.joints[..., 0, :], rotation)
    poses_n = torch.cat([matrix_to_axis_angle(root)[..., None, :], motion.poses[..., 1:, :]], dim=-2)
    rest0 = motion.rest[:, None, 0, :]
    out = []
    for b in range(len(scaling)):
        n = int(motion.lengths[b])
        trans = (pelvis_n[b, :n] - rest0[b]) * scaling[b]
        out.append({
            "smpl_poses": poses_n[b, :n].reshape(n, -1).numpy().astype(np.float32),
            "smpl_trans": trans.numpy().astype(np.float32),
            "smpl_scaling": np.array([scaling[b]], dtype=np.float32),
            "smpl_loss": float(loss[b]),
        })
    return out


def mvh_frames(motion: MotionBatch, rotation: torch.Tensor,
               betas: Sequence[tuple[float, ...]]) -> list[list[dict[str, Any]]]:
    """Per sequence of `motion` (at the video frame rate), the dicts of its released MVHumanNet frames
    (every MVH_RELEASE_STRIDE-th frame) in the native frame of `rotation`, with the given `betas`."""
    poses = motion.poses[:, ::MVH_RELEASE_STRIDE]
    transl = motion.transl[:, ::MVH_RELEASE_STRIDE]
    joints45 = smpl45_joints(poses, motion.rest[:, None], transl)            # (B, F, 45, 3)
    r = rotation.to(poses.dtype)
    joints_n = joints45 @ r
    root_n = r.T @ axis_angle_to_matrix(poses[..., 0, :])
    body = axis_angle_to_matrix(poses[..., 1:, :])                           # (B, F, 23, 3, 3)
    out = []
    for b in range(len(betas)):
        n = (int(motion.lengths[b]) - 1) // MVH_RELEASE_STRIDE + 1
        betas_b = torch.tensor([betas[b]], dtype=torch.float32)
        out.append([{
            "joints": joints_n[b, f].float().reshape(1, -1, 3).clone(),
            "global_orient": root_n[b, f].float().reshape(1, 1, 3, 3).clone(),
            "body_pose": body[b, f].float().reshape(1, 23, 3, 3).clone(),
            "betas": betas_b.clone(),
            "transl": None,
        } for f in range(n)])
    return out


# ----------------------------------------------------------------------------- broken items


def _inject_aist(pkls: dict[str, dict[str, Any]], train: list[str], params: Params,
                 g: torch.Generator) -> tuple[dict[str, bytes], dict[str, str], list[str]]:
    """Choose the ignore-list and broken sequences among train ones; returns raw bytes overrides,
    {name: reason} and the ignore list."""
    need = 2 + (3 if params.demo.inject_bad else 0)
    if len(train) < need:
        raise ConfigError(f"demo: {len(train)} AIST++ train sequences, need at least {need} for the ignore list"
                          f"{' and the broken items (demo.inject_bad)' if params.demo.inject_bad else ''}: "
                          "raise demo.aist_dancers or demo.aist_sequences")
    picks = [train[i] for i in torch.randperm(len(train), generator=g)[:need].tolist()]
    ignore, bad_names = picks[:2], picks[2:]
    overrides: dict[str, bytes] = {}
    bad: dict[str, str] = {}
    if params.demo.inject_bad:
        truncated, short, nan = bad_names
        whole = pickle.dumps(pkls[truncated])
        overrides[truncated] = whole[: len(whole) // 2]
        bad[truncated] = "unreadable"
        # Fewer than features.min_frames frames once resampled to data.fps.
        n_short = max(2, math.ceil(0.5 * params.features.min_frames / params.data.fps * params.data.aist.fps))
        pkls[short] = {k: (v[:n_short] if k in ("smpl_poses", "smpl_trans") else v) for k, v in pkls[short].items()}
        bad[short] = "too_short"
        poses = pkls[nan]["smpl_poses"].copy()
        poses[len(poses) // 3: len(poses) // 3 + 6] = np.nan
        pkls[nan] = dict(pkls[nan], smpl_poses=poses)
        bad[nan] = "nan"
    return overrides, bad, ignore


def _inject_mvh(frames: dict[str, list[dict[str, Any]]], params: Params, g: torch.Generator
                ) -> tuple[dict[str, set[int]], dict[str, str], list[str]]:
    """Break a few sequences in place; returns {seq_id: dropped frame indices}, {seq_id: reason},
    and the ids whose short hole the reader should interpolate."""
    if not params.demo.inject_bad:
        return {}, {}, []
    ids = sorted(frames)
    if len(ids) < 4:
        raise ConfigError(f"demo: {len(ids)} MVHumanNet sequences, demo.inject_bad needs at least 4 "
                          "(raise demo.mvh_performers or demo.mvh_outfits)")
    n_drop = math.floor(params.data.mvh.max_gap_s * params.data.mvh.fps) + 2   # hole > max_gap_s
    nan_id, gap_id, short_gap_id, shape_id = (ids[i] for i in torch.randperm(len(ids), generator=g)[:4].tolist())
    shortest = min(len(frames[i]) for i in (nan_id, gap_id, short_gap_id, shape_id))
    if shortest < n_drop + 6:
        raise ConfigError(f"demo: MVHumanNet sequences of {shortest} frames are too short to inject a "
                          f"{n_drop}-file hole; raise demo.mvh_seconds")
    for f in (2, 3, 4):
        frames[nan_id][f] = dict(frames[nan_id][f], joints=torch.full_like(frames[nan_id][f]["joints"], float("nan")))
    mid = len(frames[shape_id]) // 2
    frames[shape_id][mid] = dict(frames[shape_id][mid], joints=frames[shape_id][mid]["joints"].reshape(1, -1))
    dropped = {gap_id: set(range(len(frames[gap_id]) // 2, len(frames[gap_id]) // 2 + n_drop)),
               short_gap_id: {len(frames[short_gap_id]) // 2}}
    bad = {nan_id: "nan", gap_id: "gap", shape_id: "bad_shape"}
    return dropped, bad, [short_gap_id]


# ----------------------------------------------------------------------------- writing


@dataclass
class DemoSummary:
    """What `write_demo` wrote."""

    root: Path
    aist_sequences: int
    aist_seconds: float
    aist_splits: dict[str, int]
    mvh_sequences: int
    mvh_performers: int
    mvh_frame_files: int
    bad: dict[str, dict[str, str]] = field(default_factory=dict)     # domain -> {id: reason}
    interpolated: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def text(self) -> str:
        n_bad = sum(len(v) for v in self.bad.values())
        return (f"demo data in {self.root}: AIST++ {self.aist_sequences} sequences ({self.aist_seconds:.0f} s; "
                f"splits {self.aist_splits}), MVHumanNet {self.mvh_sequences} sequences of {self.mvh_performers} "
                f"performers ({self.mvh_frame_files} frame files); {n_bad} broken on purpose "
                f"{self.bad if n_bad else ''}; written in {self.seconds:.1f} s")


def _write_tree(tmp: Path, params: Params, encode_frame: Callable[[dict[str, Any]], bytes]) -> DemoSummary:
    t0 = time.perf_counter()
    data, demo = params.data, params.demo
    if demo.mvh_video_fps / MVH_RELEASE_STRIDE != data.mvh.fps:
        log.warning("demo.mvh_video_fps / %d = %.3g differs from data.mvh.fps = %.3g: the readers will play the "
                    "demo's MVHumanNet sequences at the wrong speed", MVH_RELEASE_STRIDE,
                    demo.mvh_video_fps / MVH_RELEASE_STRIDE, data.mvh.fps)
    g = torch.Generator().manual_seed(demo.seed + 3)

    # AIST++
    aist_items = plan_aist(params)
    splits = split_aist(aist_items, params)
    dances = synthesize_dances([it.spec for it in aist_items], _rest_joints(params, data.aist.gender), data.aist.fps)
    arrays = aist_arrays(dances, canonical_rotation(data.zup_to_yup, data.aist.axis_remap),
                         [it.scaling for it in aist_items], [it.loss for it in aist_items])
    pkls = {it.name: arr for it, arr in zip(aist_items, arrays)}
    overrides, aist_bad, ignore = _inject_aist(pkls, splits["train"], params, g)
    aist_dir = tmp / "aist"
    for name, arr in pkls.items():
        write_bytes(aist_dir / "motions" / f"{name}.pkl", overrides.get(name) or pickle.dumps(arr))
    for split, names in splits.items():
        write_lines(aist_dir / "splits" / f"pose_{split}.txt", names)
    write_text(aist_dir / "ignore_list.txt", f"{ignore[0]} \n{ignore[1]}\n")   # the real file has a trailing space

    # MVHumanNet
    mvh_items = plan_mvh(params)
    studio = synthesize_studio([it.spec for it in mvh_items], _rest_joints(params, MVH_GENDER),
                               float(demo.mvh_video_fps))
    frames = dict(zip((it.seq_id for it in mvh_items),
                      mvh_frames(studio, canonical_rotation(data.zup_to_yup, data.mvh.axis_remap),
                                 [it.betas for it in mvh_items])))
    dropped, mvh_bad, interpolated = _inject_mvh(frames, params, g)
    n_files = 0
    for seq_id, seq_frames in frames.items():
        for f, frame in enumerate(seq_frames):
            if f in dropped.get(seq_id, ()):
                continue
            write_bytes(tmp / "mvh" / seq_id / "smpl_param" / f"{f * MVH_RELEASE_STRIDE:04d}.pkl", encode_frame(frame))
            n_files += 1

    summary = DemoSummary(
        root=Path(demo.root), aist_sequences=len(pkls), aist_seconds=float(dances.lengths.sum()) / data.aist.fps,
        aist_splits={k: len(v) for k, v in splits.items()}, mvh_sequences=len(frames),
        mvh_performers=len({it.performer for it in mvh_items}), mvh_frame_files=n_files,
        bad={"aist": aist_bad, "mvh": mvh_bad}, interpolated=interpolated)
    write_json(tmp / MANIFEST, {
        "version": MANIFEST_VERSION,
        "demo": demo.model_dump(mode="json"),
        "aist": {"sequences": summary.aist_sequences, "genres": list(GENRES), "splits": summary.aist_splits,
                 "ignore_list": ignore, "bad": aist_bad},
        "mvh": {"sequences": summary.mvh_sequences, "performers": summary.mvh_performers,
                "frame_files": n_files, "bad": mvh_bad, "interpolated_gaps": interpolated},
    })
    summary.seconds = time.perf_counter() - t0
    return summary


def write_demo(params: Params, root: str | Path | None = None,
               encode_frame: Callable[[dict[str, Any]], bytes] | None = None) -> DemoSummary:
    """Write the whole demo dataset to `root` (default `demo.root`), replacing an earlier demo there.

    `encode_frame` turns one MVHumanNet frame dict (joints, global_orient, body_pose, betas, transl)
    into the bytes of its file; default the demo's light, deterministic frames (`demo.realformat`
    passes its full-size real-format encoder). Deterministic: the same params give byte-identical
    files (with the default encoder). Raises `ConfigError` when the sizes
    cannot hold the splits or broken items, or when `root` holds something other than a demo.
    """
    root = Path(root if root is not None else params.demo.root)
    if root.exists() and not (root / MANIFEST).exists() and any(root.iterdir()):
        raise ConfigError(f"{root}: not empty and not an earlier demo (no {MANIFEST}); refusing to replace it "
                          "(check demo.root)")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with single_thread():
            summary = _write_tree(tmp, params, encode_frame or _tensor_pickle)
        summary.root = root
        if root.exists():
            old = root.parent / f".{root.name}.old-{os.getpid()}"
            os.replace(root, old)
            os.replace(tmp, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


__all__ = ["AistItem", "DemoSummary", "MANIFEST", "MVH_RELEASE_STRIDE", "MvhItem", "aist_arrays", "mvh_frames",
           "plan_aist", "plan_mvh", "split_aist", "write_demo"]
