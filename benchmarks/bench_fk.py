"""Joint-only forward kinematics vs smplx's full-mesh forward pass: frames per second.

FlowMimic needs only SMPL's joints, so `smpl_forward_kinematics` skips the 6890-vertex linear
blend skinning that `smplx.SMPL.forward` performs. This script times both on the same poses
(default 200 sequences x 200 frames = 40,000 frames; smplx in chunks), checks they give the
same joints, prints one line per figure and writes `benchmarks/results/fk.json` (every repeat,
min/median, load). Target: FK >= 50x faster.

The SMPL model is a procedural SMPL-format model, not the licensed one: the tests' model file
(tests/smpl_fixture.py, SMPL's layout and sizes: 6890 vertices, 24 joints, 10 betas, 207 pose
blend shapes, random values), written to a temp folder. The timings depend only on the sizes, not
on the values. The poses and translations are demo dances (`flowmimic.demo.clips.dance_clips`),
the betas random.

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
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402
from smpl_fixture import write_procedural_smpl  # noqa: E402

from flowmimic.body.kinematics import smpl_forward_kinematics  # noqa: E402
from flowmimic.body.smpl_model import SmplModel  # noqa: E402
from flowmimic.demo.clips import dance_clips  # noqa: E402

TARGET_SPEEDUP = 50.0


def _timed(fn: Callable[[], torch.Tensor], warmup: Callable[[], object], device: torch.device,
           repeats: int) -> tuple[list[float], torch.Tensor]:
    """Wall times of `repeats` runs of `fn` (after running `warmup`) and the last result."""
    warmup()
    out = torch.empty(0)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return times, out


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
    ap.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/fk.json)")
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
    motion = dance_clips(s, t, fps=20.0, seed=0)
    poses = motion.poses.reshape(s, t, 72).to(device, dtype)
    transl = motion.transl.to(device, dtype)
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

    load_before = _results.load_average()
    with torch.no_grad():
        fk_times, j_fk = _timed(fk, fk, device, args.repeats)
        # smplx warms up on one chunk: a full extra pass would double the (long) run
        sx_times, j_sx = _timed(full_mesh, lambda: full_mesh(min(args.chunk, n)), device, args.smplx_repeats)
    t_fk, t_sx = min(fk_times), min(sx_times)
    speedup = t_sx / t_fk
    diff = (j_fk - j_sx).abs().max().item()
    target = _results.target(speedup, min=TARGET_SPEEDUP)

    print(f"device: {device} ({torch.get_num_threads()} threads), dtype {args.dtype}, "
          f"{s} sequences x {t} frames = {n} frames, smplx chunk {args.chunk}")
    print(f"fk_time_s: {t_fk:.4f} (best of {len(fk_times)})")
    print(f"smplx_time_s: {t_sx:.3f} (best of {len(sx_times)})")
    print(f"fk_frames_per_s: {n / t_fk:,.0f}")
    print(f"smplx_frames_per_s: {n / t_sx:,.0f}")
    print(f"speedup_fk_over_smplx: {speedup:.1f}x (target >= {TARGET_SPEEDUP:.0f}x: {'met' if target['met'] else 'MISSED'})")
    print(f"max_abs_joint_diff_m: {diff:.2e}")
    _results.save(
        "fk", config=vars(args) | {"out": None, "frames_total": n, "smpl_model": "procedural SMPL-format (tests/smpl_fixture.py)"},
        threads=torch.get_num_threads(), load_before=load_before,
        repeats={"fk_seconds": fk_times, "smplx_seconds": sx_times},
        figures={"frames": n, "fk_frames_per_s": round(n / t_fk), "smplx_frames_per_s": round(n / t_sx),
                 "speedup": round(speedup, 1), "max_abs_joint_diff_m": float(f"{diff:.2e}")},
        targets={"speedup": target}, gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        out=args.out)

if __name__ == "__main__":
    main()
