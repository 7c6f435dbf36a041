"""Throughput of `joints_to_features`: 200 sequences x 200 frames, one process, float32.

Input: demo dances (`flowmimic.demo.clips.dance_clips`, the project's one motion synthesiser: ten
genres, steps, turns, travel, feet on the floor) at 20 fps on the built-in rest skeleton, so every
step of the conversion (retargeting, facing, smoothing, IK, contacts) does real work. Writes
`benchmarks/results/features.json` (every repeat, min/median, load) and prints one line, e.g.

    joints->263: 200x200 frames in 0.21 s = 190,000 frames/s (best of 5; ...) | target >= 100,000: met

Run: python benchmarks/bench_features.py [--sequences 200] [--frames 200] [--repeats 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

from flowmimic.body.skeleton import N_JOINTS  # noqa: E402
from flowmimic.demo.clips import dance_clips  # noqa: E402
from flowmimic.features.humanml3d import FEET_THRESHOLD, joints_to_features  # noqa: E402

TARGET_FRAMES_PER_S = 100_000


def make_joints(n_seq: int, n_frames: int, seed: int = 0) -> torch.Tensor:
    """(n_seq, n_frames, 22, 3) float32 joints of demo dances at 20 fps."""
    return dance_clips(n_seq, n_frames, fps=20.0, seed=seed).joints[..., :N_JOINTS, :].contiguous()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=200)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/features.json)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    joints = make_joints(args.sequences, args.frames)
    load_before = _results.load_average()
    joints_to_features(joints[:2], FEET_THRESHOLD)                                # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        feats = joints_to_features(joints, FEET_THRESHOLD)
        times.append(time.perf_counter() - t0)
    assert feats.shape == (args.sequences, args.frames - 1, 263) and bool(torch.isfinite(feats).all())
    n = args.sequences * args.frames
    best = n / min(times)
    target = _results.target(best, min=TARGET_FRAMES_PER_S)
    print(f"joints->263: {args.sequences}x{args.frames} frames in {min(times):.2f} s = {best:,.0f} frames/s "
          f"(best of {args.repeats}, median {n / sorted(times)[len(times) // 2]:,.0f}; torch threads "
          f"{torch.get_num_threads()}) | target >= {TARGET_FRAMES_PER_S:,}: {'met' if target['met'] else 'MISSED'}")
    _results.save("features", config=vars(args) | {"out": None, "frames_total": n, "dtype": "float32"},
                  threads=torch.get_num_threads(), load_before=load_before, repeats={"seconds": times},
                  figures={"frames_per_s_best": round(best), "frames_per_s_median": round(n / sorted(times)[len(times) // 2])},
                  targets={"frames_per_s_best": target}, out=args.out)


if __name__ == "__main__":
    main()
