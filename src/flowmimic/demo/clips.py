"""Ready-made motions from the demo synthesiser, for tests and benchmarks.

The one motion synthesiser of the project is `demo.dances` / `demo.studio` (on `demo.motion`);
whoever needs plausible motion (test fixtures, benchmarks) asks for it here instead of writing its
own sine waves: `dance_clips` gives AIST++-style dances, `studio_clips` calm MVHumanNet-style
actions, each batch of exactly `frames` frames in the canonical frame (y-up metres, facing +z,
floor at y = 0), deterministic from `seed`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from flowmimic.body.skeleton import default_rest_joints
from flowmimic.demo.dances import genre_tempo, synthesize_dances
from flowmimic.demo.motion import DanceSpec, MotionBatch, StudioSpec, single_thread
from flowmimic.demo.studio import synthesize_studio
from flowmimic.taxonomy import GENRES


def _seeds(seed: int, n: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2**31 - 1, (n,), generator=g).tolist()


def _seconds(frames: int, fps: float) -> float:
    if frames < 2:
        raise ValueError(f"a clip needs at least 2 frames, got {frames}")
    return frames / fps


def dance_clips(n: int, frames: int, fps: float = 20.0, seed: int = 0, genres: Sequence[str] | None = None,
                rest: Tensor | None = None) -> MotionBatch:
    """`n` dances of `frames` frames each at `fps`.

    Args:
        genres: AIST++ genre code of each dance (length `n`); default: cycling through `taxonomy.GENRES`.
        rest: (24, 3) rest skeleton; default the built-in one (`body.skeleton.default_rest_joints`).
    Returns:
        `MotionBatch` (float32) with every length equal to `frames`; dancer i is basic (sBM) for even i,
        advanced (sFM) for odd i.
    """
    genres = list(genres) if genres is not None else [GENRES[i % len(GENRES)] for i in range(n)]
    if len(genres) != n:
        raise ValueError(f"{len(genres)} genres given for {n} dances")
    seeds = _seeds(seed, 2 * n)
    specs = [DanceSpec(genre=genres[i], dancer_seed=seeds[2 * i], advanced=i % 2 == 1,
                       bpm=genre_tempo(genres[i], i % 6), seconds=_seconds(frames, fps), seed=seeds[2 * i + 1])
             for i in range(n)]
    with single_thread():
        return synthesize_dances(specs, default_rest_joints() if rest is None else rest, fps)


def studio_clips(n: int, frames: int, fps: float = 20.0, seed: int = 0, rest: Tensor | None = None) -> MotionBatch:
    """`n` MVHumanNet-like studio sequences of `frames` frames each at `fps` (each performer's body is
    `rest`, default the built-in skeleton, scaled by a per-performer factor; see `synthesize_studio`)."""
    seeds = _seeds(seed, 2 * n)
    specs = [StudioSpec(performer_seed=seeds[2 * i], seconds=_seconds(frames, fps), seed=seeds[2 * i + 1])
             for i in range(n)]
    with single_thread():
        return synthesize_studio(specs, default_rest_joints() if rest is None else rest, fps)


__all__ = ["dance_clips", "studio_clips"]
