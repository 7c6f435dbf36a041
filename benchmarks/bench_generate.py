"""Throughput of `flowmimic transfer` and `flowmimic sample` (library functions, CPU or CUDA).

Model: the checkpoint given by `--checkpoint`, else `train.model_path` if it exists, else a model of
the committed params.yaml `train` size (d_model, layers, d_z, seq_len) with random weights (the
zero-initialised output layers re-drawn) and a unit normaliser: speed does not depend on the
weights' values. `config.trained_checkpoint` in the result file says which one ran. Input: one demo
dance (`flowmimic.demo.clips.dance_clips`, genre gBR) of `--seconds` (default 60 s at data.fps),
read as a joints array.

  transfer  features of the input -> windows encoded, latents blended -> windows decoded, blended
            -> joints, put back (everything `transfer()` does after reading IN), frames/s
  sample    `--samples` motions of `--sample-seconds` each from the prior, frames/s over all of them

Each is timed `--repeats` times after one warm-up. Writes `benchmarks/results/generate.json`
(`benchmarks/_results.py`: every repeat in seconds and in frames/s, machine, threads, load before
and after; figures: best and median frames/s of each) and prints one line per figure.

Run: python benchmarks/bench_generate.py [--device cpu|cuda] [--checkpoint PATH] [--seconds 60]
                                         [--samples 8] [--sample-seconds 10] [--repeats 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

from flowmimic.body.skeleton import N_JOINTS  # noqa: E402
from flowmimic.demo.clips import dance_clips  # noqa: E402
from flowmimic.features.layout import DIM  # noqa: E402
from flowmimic.features.normalize import Normalizer  # noqa: E402
from flowmimic.generation import GenerationModel, load_generation_model, read_input, sample, transfer  # noqa: E402
from flowmimic.io import save_npy  # noqa: E402
from flowmimic.model.vae import MotionVAE, VAEConfig  # noqa: E402
from flowmimic.params import load_params  # noqa: E402

REPO = _results.REPO


def random_model(params, device: torch.device) -> GenerationModel:
    torch.manual_seed(0)
    model = MotionVAE(VAEConfig.from_train_params(params.train))
    with torch.no_grad():      # zero-init output layers would make the decoder trivially constant
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(0.0, 0.02)
    norm = Normalizer(np.zeros(DIM, np.float32), np.ones(DIM, np.float32))
    return GenerationModel(model.to(device).eval(), norm, params.train.seq_len, "random weights", "-", device)


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> list[float]:
    """Wall seconds of `repeats` runs of `fn`, after one warm-up run."""
    fn()
    out = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--sample-seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/generate.json)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    params = load_params(args.params)
    load_before = _results.load_average()
    default_ckpt = REPO / params.train.model_path
    ckpt = args.checkpoint or (str(default_ckpt) if default_ckpt.exists() else None)
    gm = load_generation_model(ckpt, device) if ckpt else random_model(params, device)

    fps = float(params.data.fps)
    joints = dance_clips(1, int(round(args.seconds * fps)), fps, seed=0, genres=["gBR"]).sequence(0)[2][:, :N_JOINTS]
    with tempfile.TemporaryDirectory() as tmp:
        save_npy(Path(tmp) / "dance.npy", joints.numpy())
        motion = read_input(Path(tmp) / "dance.npy", params)
    t_frames = int(motion.joints.shape[0])
    s_frames = args.samples * int(round(args.sample_seconds * fps))

    transfer_s = timed(lambda: transfer(motion, gm, params, "Krump"), args.repeats, device)
    sample_s = timed(lambda: sample(gm, params, "Krump", seconds=args.sample_seconds, n=args.samples),
                     args.repeats, device)
    rates = {"transfer": [t_frames / s for s in transfer_s], "sample": [s_frames / s for s in sample_s]}
    figures: dict[str, int] = {"transfer_frames": t_frames, "sample_frames": s_frames}
    for name, r in rates.items():
        figures[f"{name}_frames_per_s_best"] = round(max(r))
        figures[f"{name}_frames_per_s_median"] = round(statistics.median(r))

    print(f"model: {gm.path} ({gm.model.num_params():,} parameters, window {gm.window}) on {device}, "
          f"{torch.get_num_threads()} threads, load average {load_before[0]:.2f}")
    for name in rates:
        print(f"{name}_frames_per_s: {figures[f'{name}_frames_per_s_best']:,} best, "
              f"{figures[f'{name}_frames_per_s_median']:,} median ({figures[f'{name}_frames']} frames, "
              f"{args.repeats} repeats)")
    _results.save(
        "generate",
        config=vars(args) | {"out": None, "checkpoint": Path(ckpt) if ckpt else None, "trained_checkpoint": bool(ckpt),
                             "model_params": gm.model.num_params(), "window": gm.window,
                             "d_model": gm.model.config.d_model, "n_layers": gm.model.config.n_layers,
                             "genre": "Krump", "fps": fps},
        threads=torch.get_num_threads(), load_before=load_before,
        repeats={"transfer_seconds": transfer_s, "sample_seconds": sample_s,
                 "transfer_frames_per_s": rates["transfer"], "sample_frames_per_s": rates["sample"]},
        figures=figures, gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None, out=args.out)


if __name__ == "__main__":
    main()
