"""Throughput of `joints_to_features`: 200 sequences x 200 frames, one process, float32.

Input: forward kinematics of smooth random poses (about +-0.3 rad per joint) on the built-in rest
skeleton, each sequence with its own heading and a walking root, so every step of the conversion
(retargeting, facing, smoothing, IK) does real work. Prints one line, e.g.

    joints->263: 200x200 frames in 0.21 s = 190,000 frames/s

Run: python benchmarks/bench_features.py [--sequences 200] [--frames 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from flowmimic.body.kinematics import smpl_forward_kinematics
from flowmimic.body.skeleton import N_JOINTS, N_SMPL_JOINTS, default_rest_joints
from flowmimic.features.humanml3d import FEET_THRESHOLD, joints_to_features


def make_joints(n_seq: int, n_frames: int, seed: int = 0) -> torch.Tensor:
    """(n_seq, n_frames, 22, 3) float32 joints of smooth random motions."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, n_frames)[None, :, None, None]                       # (1, T, 1, 1)
    freq = torch.rand(n_seq, 1, N_SMPL_JOINTS, 3, generator=g) * 4 + 0.5
    phase = torch.rand(n_seq, 1, N_SMPL_JOINTS, 3, generator=g) * 2 * math.pi
    poses = 0.3 * torch.sin(2 * math.pi * freq * t + phase)                       # (B, T, 24, 3)
    heading = torch.rand(n_seq, 1, generator=g) * 2 * math.pi + torch.linspace(0, 1, n_frames)[None]
    poses[..., 0, :] = 0.0
    poses[..., 0, 1] = heading                                                    # yaw about +y
    step = torch.stack((torch.sin(heading), torch.zeros_like(heading), torch.cos(heading)), -1)
    transl = torch.cumsum(0.05 * step, dim=1) + torch.randn(n_seq, 1, 3, generator=g)
    transl[..., 1] = 0.95
    joints = smpl_forward_kinematics(poses, default_rest_joints(), transl)
    return joints[..., :N_JOINTS, :].contiguous()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=200)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    joints = make_joints(args.sequences, args.frames)
    joints_to_features(joints[:2], FEET_THRESHOLD)                                # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        feats = joints_to_features(joints, FEET_THRESHOLD)
        times.append(time.perf_counter() - t0)
    assert feats.shape == (args.sequences, args.frames - 1, 263) and bool(torch.isfinite(feats).all())
    best = min(times)
    n = args.sequences * args.frames
    print(f"joints->263: {args.sequences}x{args.frames} frames in {best:.2f} s = {n / best:,.0f} frames/s "
          f"(best of {args.repeats}; torch threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
