"""Full-size sanity: the seed's full VAE configuration overfits a handful of demo windows.

A model that cannot drive its training error to near zero on a few windows has a bug (a broken
mask, a detached loss, a conditioning path that never reaches the output), whatever its size. This
benchmark builds the seed's full configuration (d_model 512, 8+8 layers, 8 heads, d_z 256, windows
of 120 frames: 77.9M parameters) and trains it on `--windows` demo dances (the project's one motion
synthiser, `flowmimic.demo.clips`), with the demo recipe's losses (`params.yaml` train weights, joint
loss included), no KL warm-up and the trainer's LR schedule (warm-up, cosine decay), until the root-aligned MPJPE of the posterior-mean reconstruction
falls below `--target-mm` (5 mm) or `--max-steps` is reached. Normalisation uses the windows' own
mean/std (the stats stage's rule on this tiny set).

Writes `benchmarks/results/overfit.json`: the MPJPE curve (every `--eval-every` steps), steps and
seconds to the target, parameter count, device and threads. Too slow for CI on CPU (a step is
seconds); `--device cuda` runs the same on a GPU.

Run: python benchmarks/bench_overfit.py [--device cpu|cuda] [--windows 4] [--max-steps 1000]
                                        [--target-mm 5] [--lr 3e-4] [--threads 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

from flowmimic.body.skeleton import N_JOINTS
from flowmimic.demo.clips import dance_clips
from flowmimic.evaluation.metrics import joint_errors
from flowmimic.features import layout
from flowmimic.features.humanml3d import joints_to_features
from flowmimic.features.normalize import Normalizer
from flowmimic.model.losses import LossWeights, vae_losses
from flowmimic.model.vae import MotionVAE, VAEConfig, to_features
from flowmimic.params import load_params
from flowmimic.taxonomy import GENRES, N_DOMAINS, N_GENRES, genre_id
from flowmimic.training.loop import build_scheduler

REPO = Path(__file__).resolve().parents[1]
# The seed's full configuration (README: "The seed's full model"); its parameter count is tested.
FULL = dict(d_model=512, n_layers=8, n_heads=8, mlp_ratio=4.0, dropout=0.0, d_z=256, style_head=True)
SEQ_LEN = 120


def demo_windows(n: int, fps: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` dances of SEQ_LEN feature frames (raw 263-D) and their genre ids."""
    codes = [GENRES[i % len(GENRES)] for i in range(n)]
    clips = dance_clips(n, SEQ_LEN + 1, fps=fps, seed=seed, genres=codes)
    feats = joints_to_features(clips.joints[..., :N_JOINTS, :])                   # (n, SEQ_LEN, 263)
    genres = torch.tensor([genre_id(g) for g in codes])
    return feats.float(), genres


@torch.no_grad()
def root_aligned_mpjpe_mm(model: MotionVAE, x: torch.Tensor, mask, domain, genre, norm: Normalizer) -> float:
    model.eval()
    out = model(x, mask, domain, genre, sample=False)
    model.train()
    pred = norm.denormalize(to_features(out.recon))
    return 1000.0 * float(joint_errors(pred.cpu(), norm.denormalize(x).cpu())["mpjpe_root"].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--max-steps", type=int, default=1000)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--target-mm", type=float, default=5.0)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup-steps", type=int, default=20)
    ap.add_argument("--kl-weight", type=float, default=None,
                    help="KL weight (default: params.yaml's train.kl_weight; 0 asks whether the network can fit at all)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads on CPU")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/overfit.json)")
    args = ap.parse_args()
    load_before = _results.load_average()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    params = load_params(REPO / "params.yaml")

    feats, genres = demo_windows(args.windows, params.data.fps, args.seed)
    flat = feats.reshape(-1, layout.DIM).numpy()
    norm = Normalizer(flat.mean(0), np.maximum(flat.std(0), params.stats.min_std))
    x = norm.normalize(feats).to(device)
    mask = torch.ones(x.shape[:2], dtype=torch.bool, device=device)
    domain = torch.zeros(len(x), dtype=torch.long, device=device)                 # AIST++
    genre = genres.to(device)

    cfg = VAEConfig(d_in=layout.DIM, n_domains=N_DOMAINS, n_genres=N_GENRES, **FULL)
    model = MotionVAE(cfg).to(device)
    p = params.train
    weights = LossWeights(w_recon=p.w_recon, w_contact=p.w_contact, w_smooth=p.w_smooth, w_style=p.w_style,
                          w_joints=p.w_joints, kl_weight=p.kl_weight if args.kl_weight is None else args.kl_weight,
                          kl_warmup_steps=0)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    # The trainer's schedule: linear warm-up, cosine decay to 10 % (without it the loss oscillates late).
    sched = build_scheduler(opt, args.warmup_steps, args.max_steps, min_lr_ratio=0.1)
    curve: list[list[float]] = []
    step_seconds: list[float] = []
    reached_at, start = None, time.perf_counter()
    for step in range(1, args.max_steps + 1):
        t = time.perf_counter()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(x, mask, domain, genre)
        loss = vae_losses(out, x, mask, genre, weights, weights.kl_weight, norm.denormalize)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        step_seconds.append(time.perf_counter() - t)
        if step % args.eval_every == 0 or step == args.max_steps:
            mm = root_aligned_mpjpe_mm(model, x, mask, domain, genre, norm)
            curve.append([step, round(mm, 3)])
            print(f"step {step}: root-aligned MPJPE {mm:.2f} mm ({time.perf_counter() - start:.0f} s)", flush=True)
            if mm < args.target_mm:
                reached_at = step
                break
    seconds = time.perf_counter() - start
    final = curve[-1][1]
    figures = {"parameters": model.num_params(), "windows": args.windows, "window_frames": SEQ_LEN,
               "final_mpjpe_root_aligned_mm": final, "steps": curve[-1][0], "seconds": round(seconds, 1),
               "steps_to_target": reached_at, "curve": curve}
    _results.save("overfit", config=vars(args) | {"out": None}, threads=torch.get_num_threads() if device.type == "cpu" else None,
                  load_before=load_before, repeats={"step_seconds": step_seconds}, figures=figures,
                  targets={"final_mpjpe_root_aligned_mm": _results.target(final, max=args.target_mm)},
                  gpu=torch.cuda.get_device_name() if device.type == "cuda" else None, out=args.out)


if __name__ == "__main__":
    main()
