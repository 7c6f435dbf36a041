"""Training throughput and achieved FLOP/s of the motion VAE (demo and full model), and the demo's MPJPE.

Each model is `flowmimic.model.vae.MotionVAE` trained by the trainer's own loop
(`flowmimic.training.loop.train_epoch`: forward, `vae_losses`, backward, gradient clipping, AdamW and LR
scheduler step; bf16 autocast on CUDA as in `flowmimic train`) on one fixed batch of random
normalised input (features N(0, 1), contacts 0/1, every frame real, domains alternating, AIST++
samples with a random genre), so no data is needed and the data loader is not timed. The joint-position
loss (`train.w_joints`) needs the features' normaliser, as in training: a unit one here (the batch is
taken as raw features), since speed does not depend on the statistics' values.

  demo  the committed params.yaml `train` section (model size, seq_len, batch_size, loss weights)
  full  the seed's model: d_model 512, 8+8 layers, 8 heads, d_z 256, windows of 120; batch 64 on
        CUDA, but by default batch 8 and 3 steps on CPU (one batch-64 step is ~2.4 TFLOP: over a minute on 2 cores)

FLOPs per step: `torch.utils.flop_counter.FlopCounterMode` over one forward + loss + backward (the
AdamW update, a few FLOPs per parameter, is not counted). Whether attention is in that count
depends on the kernel SDPA picks: the math path (CPU training with dropout) is counted through its
bmm's, CUDA's flash / efficient kernels are counted directly; when no attention op shows up in the
count (e.g. CPU's fused flash kernel) the script adds it analytically (QK^T and AV: 4*B*T^2*D per
layer forward, twice that backward) and says so. FLOP/s = FLOPs per step x steps/s.

The MPJPE line reads the evaluate stage's `metrics/eval.json` (the demo run of `dvc repro`) and says
whether it is the file recorded in dvc.lock. Prints one line per figure, e.g.

    demo_steps_per_s: 6.21 (20 steps in 3.2 s, AdamW step included)
    demo_samples_per_s: 198.9 windows/s (11,933 frames/s)

Writes `benchmarks/results/train.json` (the step rate of every timed chunk, min/median, load; figures
`<model>_...`). Timing stops after `--max-seconds` (default 30) per model even if fewer than `--steps` were done;
the line says how many steps were timed. On CPU torch's default thread count is what `flowmimic
train` uses; `--threads 1` shows whether intra-op threads help on a busy machine.

Run: python benchmarks/bench_train.py [--device cpu|cuda] [--steps 20] [--full-steps 3] [--full-batch 8]
                                      [--max-seconds 30] [--skip-full] [--threads 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

from flowmimic.cache.catalog import DOMAINS
from flowmimic.features import layout
from flowmimic.features.normalize import Normalizer
from flowmimic.model.losses import LossWeights, kl_weight_at, training_objective, vae_losses
from flowmimic.model.vae import MotionVAE, VAEConfig
from flowmimic.params import load_params
from flowmimic.taxonomy import N_GENRES
from flowmimic.training.loop import build_optimizer, build_scheduler, train_epoch

REPO = Path(__file__).resolve().parents[1]
FULL = dict(d_model=512, n_layers=8, n_heads=8, d_z=256)      # the seed's model
FULL_SEQ_LEN, FULL_BATCH = 120, 64
# the trainer's `denormalize` (its joint loss decodes features to joints); a unit normaliser: speed does
# not depend on the statistics
DENORMALIZE = Normalizer(np.zeros(layout.DIM, np.float32), np.ones(layout.DIM, np.float32)).denormalize


def random_batch(batch: int, seq_len: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """One training batch as the data loader yields it: x (B, T, 263), mask (B, T), domain/genre (B,)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, seq_len, layout.DIM, generator=g)
    x[..., layout.CONTACTS] = (torch.rand(batch, seq_len, 4, generator=g) < 0.5).float()
    domain = torch.arange(batch) % len(DOMAINS)                                         # 0 aist, 1 mvh
    genre = torch.where(domain == 0, torch.randint(1, N_GENRES + 1, (batch,), generator=g), 0)
    out = {"x": x, "mask": torch.ones(batch, seq_len, dtype=torch.bool), "domain": domain, "genre": genre}
    return {k: v.to(device) for k, v in out.items()}


def count_flops(model: MotionVAE, batch: dict[str, torch.Tensor], weights: LossWeights,
                device: torch.device) -> tuple[int, str]:
    """FLOPs of one forward + loss + backward, and how attention was counted."""
    cfg = model.config
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(batch["x"], batch["mask"], batch["domain"], batch["genre"])
        losses = vae_losses(out, batch["x"], batch["mask"], batch["genre"], weights, kl_weight_at(0, weights),
                            DENORMALIZE)
        training_objective(losses, weights).backward()
    model.zero_grad(set_to_none=True)
    flops = counter.get_total_flops()
    ops = [str(op) for op in counter.get_flop_counts()["Global"]]
    if any("attention" in op for op in ops):
        return flops, "attention counted by FlopCounterMode (SDPA kernel)"
    if any("bmm" in op for op in ops):           # the model's linears are (add)mm; bmm's are SDPA's math path
        return flops, "attention counted by FlopCounterMode (SDPA math path)"
    B, T = batch["x"].shape[:2]
    attention = 12 * B * T * T * cfg.d_model * 2 * cfg.n_layers
    return flops + attention, f"attention added analytically ({attention / 1e9:.2f} GFLOP)"


def bench(name: str, cfg: VAEConfig, batch_size: int, seq_len: int, steps: int, weights: LossWeights,
          train, device: torch.device, max_seconds: float, chunk: int, note: str = "") -> dict:
    """Time up to `steps` optimiser steps of the trainer's loop (in chunks of `chunk` steps, stopping
    early once `max_seconds` are spent), print the figures and return them with every chunk's steps/s."""
    torch.manual_seed(0)
    model = MotionVAE(cfg).to(device).train()
    optimizer = build_optimizer(model, train.lr, train.weight_decay)
    scheduler = build_scheduler(optimizer, train.warmup_steps, 10 * steps + 10, train.min_lr_ratio)
    batch = random_batch(batch_size, seq_len, device)
    flops, how = count_flops(model, batch, weights, device)

    def run(n: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        train_epoch(model, [batch] * n, optimizer, scheduler, weights, step=0, device=device,
                    grad_clip=train.grad_clip, log_every=train.log_every_steps, denormalize=DENORMALIZE,
                    cond_dropout=train.cond_dropout)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    run(1 if device.type == "cpu" else 5)                                               # warm-up
    done, seconds, rates = 0, 0.0, []
    while done < steps and (seconds < max_seconds or done == 0):     # bounded wall time on a slow machine
        n = min(chunk, steps - done)
        dt = run(n)
        seconds += dt
        done += n
        rates.append(n / dt)
    sps = done / seconds
    dtype = "bf16 autocast" if device.type == "cuda" else "float32"
    threads = f", {torch.get_num_threads()} thread(s)" if device.type == "cpu" else ""
    print(f"{name}: {model.num_params():,} params (d_model {cfg.d_model}, {cfg.n_layers}+{cfg.n_layers} layers, "
          f"{cfg.n_heads} heads, d_z {cfg.d_z}), batch {batch_size} x {seq_len} frames, {device.type} "
          f"{dtype}{threads}{note}")
    print(f"{name}_steps_per_s: {sps:.3g} ({done} steps in {seconds:.1f} s, AdamW step included)")
    print(f"{name}_samples_per_s: {sps * batch_size:,.1f} windows/s ({sps * batch_size * seq_len:,.0f} frames/s)")
    print(f"{name}_gflop_per_step: {flops / 1e9:,.2f} (forward + backward; {how})")
    print(f"{name}_achieved_gflop_per_s: {flops * sps / 1e9:,.1f}")
    return {"rates": rates, "figures": {
        f"{name}_params": model.num_params(), f"{name}_batch": batch_size, f"{name}_seq_len": seq_len,
        f"{name}_steps_timed": done, f"{name}_steps_per_s": float(f"{sps:.3g}"),
        f"{name}_windows_per_s": round(sps * batch_size, 1), f"{name}_gflop_per_step": round(flops / 1e9, 2),
        f"{name}_gflop_per_s": round(flops * sps / 1e9, 1)}, "flops_note": how}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def report_mpjpe(eval_path: Path) -> None:
    """Print the MPJPE of the demo run from the evaluate stage's metrics file, and where it came from."""
    if not eval_path.exists():
        print(f"demo_mpjpe: {eval_path} not found: run `dvc repro` first")
        return
    m = json.loads(eval_path.read_text(encoding="utf-8"))
    lock, origin = REPO / "dvc.lock", "not recorded in dvc.lock"
    if lock.exists():
        outs = (yaml.safe_load(lock.read_text(encoding="utf-8")).get("stages", {}).get("evaluate", {}).get("outs", []))
        rec = [o for o in outs if (REPO / o["path"]).resolve() == eval_path.resolve()]
        if rec:
            origin = ("the output dvc.lock records for `dvc repro`" if rec[0].get("md5") == _md5(eval_path)
                      else "differs from dvc.lock: changed since the last `dvc repro`")
    ck = m.get("checkpoint", {})
    if "test" not in m:
        print(f"demo_mpjpe: {eval_path} predates the test split (no `test` key): rerun `dvc repro`")
        return
    t = m["test"]
    print(f"demo_mpjpe_source: {eval_path.relative_to(REPO) if eval_path.is_relative_to(REPO) else eval_path} "
          f"({origin}; checkpoint epoch {ck.get('epoch')}, step {ck.get('step')}; test split, "
          f"{m['settings']['window_frames']}-frame windows)")
    print(f"demo_mpjpe_mm: root-aligned (raw) overall {t['overall']['mpjpe_root_aligned_mm']:.1f} "
          f"({t['overall']['mpjpe_mm']:.1f}); "
          + "; ".join(f"{d} {t[d]['mpjpe_root_aligned_mm']:.1f} ({t[d]['mpjpe_mm']:.1f})"
                      for d in DOMAINS if "mpjpe_mm" in t.get(d, {})))
    if "style_accuracy" in t.get("aist", {}):
        print(f"demo_aist_style_accuracy: {t['aist']['style_accuracy']:.3f} ({t['aist'].get('style_windows')} windows)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--steps", type=int, default=20, help="timed steps of the demo model")
    ap.add_argument("--full-steps", type=int, default=None, help="timed steps of the full model (cpu 3, cuda 20)")
    ap.add_argument("--full-batch", type=int, default=None, help=f"full model's batch (cpu 8, cuda {FULL_BATCH})")
    ap.add_argument("--max-seconds", type=float, default=30.0,
                    help="stop timing a model after this many seconds (at a chunk boundary)")
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0: torch's default)")
    ap.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/train.json)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    params = load_params(args.params)
    p = params.train
    weights = LossWeights.from_train_params(p)

    demo_cfg = VAEConfig.from_train_params(p)
    load_before = _results.load_average()
    results = {"demo": bench("demo", demo_cfg, p.batch_size, p.seq_len, args.steps, weights, p, device,
                             args.max_seconds, chunk=5)}
    if not args.skip_full:
        cuda = device.type == "cuda"
        batch = args.full_batch or (FULL_BATCH if cuda else 8)
        steps = args.full_steps or (20 if cuda else 3)
        note = "" if batch == FULL_BATCH else f" (the seed trains with batch {FULL_BATCH}; smaller to fit the time)"
        results["full"] = bench("full", dataclasses.replace(demo_cfg, **FULL), batch, FULL_SEQ_LEN, steps, weights,
                                p, device, args.max_seconds, chunk=1 if device.type == "cpu" else 5, note=note)
    _results.save(
        "train" if device.type == "cpu" else f"train_{device.type}",
        config=vars(args) | {"out": None, "dtype": "bf16 autocast" if device.type == "cuda" else "float32",
                             "flops": {k: r["flops_note"] for k, r in results.items()}},
        threads=torch.get_num_threads(), load_before=load_before,
        repeats={f"{k}_steps_per_s_per_chunk": r["rates"] for k, r in results.items()},
        figures={k: v for r in results.values() for k, v in r["figures"].items()},
        gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None, out=args.out)
    eval_path = Path(params.evaluate.metrics)
    report_mpjpe(eval_path if eval_path.is_absolute() else REPO / eval_path)


if __name__ == "__main__":
    main()
