"""Joint-only forward kinematics vs smplx's full-mesh forward pass: frames per second.

FlowMimic needs only SMPL's joints, so `smpl_forward_kinematics` skips the 6890-vertex linear
blend skinning that `smplx.SMPL.forward` performs. This script times both on the same poses
(default 200 sequences x 200 frames = 40,000 frames; smplx in chunks), checks they give the
same joints, and prints one line per figure. Target: FK >= 50x faster.

The SMPL model is the tests' procedural model file (tests/smpl_fixture.py), written to a temp
folder, so the benchmark runs without the licensed SMPL files.

    python benchmarks/bench_fk.py [--sequences 200 --frames 200 --chunk 2000 --device cpu]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from smpl_fixture import write_procedural_smpl  # noqa: E402

from flowmimic.body.kinematics import smpl_forward_kinematics  # noqa: E402
from flowmimic.body.smpl_model import SmplModel  # noqa: E402


def _timed(fn: Callable[[], torch.Tensor], warmup: Callable[[], object], device: torch.device,
           repeats: int) -> tuple[float, torch.Tensor]:
    """Best wall time of `repeats` runs of `fn` (after running `warmup`) and the last result."""
    warmup()
    out = torch.empty(0)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=200)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--chunk", type=int, default=2000, help="frames per smplx forward call")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--repeats", type=int, default=3, help="FK timing: best of this many runs")
    ap.add_argument("--smplx-repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)

    with tempfile.TemporaryDirectory() as tmp:
        model = SmplModel.from_file(write_procedural_smpl(Path(tmp) / "SMPL_NEUTRAL.pkl", "pkl_chumpy"))
    body = model.to_smplx(batch_size=args.chunk, dtype=dtype).to(device)

    g = torch.Generator().manual_seed(0)
    s, t = args.sequences, args.frames
    n = s * t
    poses = (torch.randn(s, t, 72, generator=g) * 0.5).to(device, dtype)
    transl = torch.randn(s, t, 3, generator=g).to(device, dtype)
    betas = torch.randn(s, model.num_betas, generator=g).to(device, dtype)

    def fk() -> torch.Tensor:
        rest = model.rest_joints(betas[:, None])               # (S, 1, 24, 3): one shape per sequence
        return smpl_forward_kinematics(poses, rest, transl)     # (S, T, 24, 3)

    flat_poses, flat_transl = poses.reshape(n, 72), transl.reshape(n, 3)
    flat_betas = betas[:, None].expand(s, t, -1).reshape(n, -1)

    def full_mesh(limit: int = n) -> torch.Tensor:
        out = []
        for i in range(0, limit, args.chunk):
            sl = slice(i, i + args.chunk)
            res = body(betas=flat_betas[sl], global_orient=flat_poses[sl, :3],
                       body_pose=flat_poses[sl, 3:], transl=flat_transl[sl])
            out.append(res.joints[:, :24])
        return torch.cat(out).reshape(-1, t, 24, 3)

    with torch.no_grad():
        t_fk, j_fk = _timed(fk, fk, device, args.repeats)
        # smplx warms up on one chunk: a full extra pass would double the (long) run
        t_sx, j_sx = _timed(full_mesh, lambda: full_mesh(min(args.chunk, n)), device, args.smplx_repeats)

    print(f"device: {device} ({torch.get_num_threads()} threads), dtype {args.dtype}, "
          f"{s} sequences x {t} frames = {n} frames, smplx chunk {args.chunk}")
    print(f"fk_time_s: {t_fk:.4f}")
    print(f"smplx_time_s: {t_sx:.3f}")
    print(f"fk_frames_per_s: {n / t_fk:,.0f}")
    print(f"smplx_frames_per_s: {n / t_sx:,.0f}")
    print(f"speedup_fk_over_smplx: {t_sx / t_fk:.1f}x (target >= 50x)")
    print(f"max_abs_joint_diff_m: {(j_fk - j_sx).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
