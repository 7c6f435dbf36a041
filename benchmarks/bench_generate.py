"""Throughput of `flowmimic transfer` and `flowmimic sample` (library functions, CPU or CUDA).

Model: the checkpoint given by `--checkpoint`, else `train.model_path` if it exists, else a model of
the committed params.yaml `train` size (d_model, layers, d_z, seq_len) with random weights (the
zero-initialised output layers re-drawn) and a unit normaliser: speed does not depend on the
weights' values. Input: one procedural demo dance of `--seconds` (default 60 s at data.fps), read
as a joints array.

  transfer  features of the input -> windows encoded, latents blended -> windows decoded, blended
            -> joints, put back (everything `transfer()` does after reading IN), frames/s
  sample    `--samples` motions of `--sample-seconds` each from the prior, frames/s over all of them

Each is timed `--repeats` times after one warm-up; the JSON keeps every repeat. Writes
benchmarks/results/bench_generate.json (date, machine, torch threads, load average before and after,
device, model size, all repeats) and prints one line per figure.

Run: python benchmarks/bench_generate.py [--device cpu|cuda] [--checkpoint PATH] [--seconds 60]
                                         [--samples 8] [--sample-seconds 10] [--repeats 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from flowmimic.body.skeleton import N_JOINTS, default_rest_joints
from flowmimic.demo.dances import synthesize_dances
from flowmimic.demo.motion import DanceSpec
from flowmimic.features.layout import DIM
from flowmimic.features.normalize import Normalizer
from flowmimic.generation import GenerationModel, load_generation_model, read_input, sample, transfer
from flowmimic.generation.inputs import MotionInput
from flowmimic.io import save_npy, write_json
from flowmimic.model.vae import MotionVAE, VAEConfig
from flowmimic.params import load_params

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "bench_generate.json"


def random_model(params, device: torch.device) -> GenerationModel:
    torch.manual_seed(0)
    model = MotionVAE(VAEConfig.from_train_params(params.train))
    with torch.no_grad():      # zero-init output layers would make the decoder trivially constant
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(0.0, 0.02)
    norm = Normalizer(np.zeros(DIM, np.float32), np.ones(DIM, np.float32))
    return GenerationModel(model.to(device).eval(), norm, params.train.seq_len, "random weights", "-", device)


def timed(fn, repeats: int, device: torch.device) -> list[float]:
    fn()                                                    # warm-up
    out = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--sample-seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--output", default=str(RESULT))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    params = load_params(args.params)
    load_before = os.getloadavg()
    ckpt = args.checkpoint or (params.train.model_path if Path(params.train.model_path).exists() else None)
    gm = load_generation_model(ckpt, device) if ckpt else random_model(params, device)

    fps = float(params.data.fps)
    spec = DanceSpec(genre="gBR", dancer_seed=0, advanced=True, bpm=110.0, seconds=args.seconds, seed=0)
    joints = synthesize_dances([spec], default_rest_joints(torch.float32), fps).sequence(0)[2][:, :N_JOINTS]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        save_npy(Path(tmp) / "dance.npy", joints.numpy())
        motion: MotionInput = read_input(Path(tmp) / "dance.npy", params)
    t_frames = motion.joints.shape[0]
    s_frames = args.samples * int(round(args.sample_seconds * fps))

    transfer_s = timed(lambda: transfer(motion, gm, params, "Krump"), args.repeats, device)
    sample_s = timed(lambda: sample(gm, params, "Krump", seconds=args.sample_seconds, n=args.samples),
                     args.repeats, device)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "torch": torch.__version__,
                    "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None},
        "threads": torch.get_num_threads(),
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "device": str(device),
        "model": {"checkpoint": gm.path, "params": gm.model.num_params(), "window": gm.window,
                  "d_model": gm.model.config.d_model, "n_layers": gm.model.config.n_layers},
        "transfer": {"frames": t_frames, "repeats_s": [round(s, 4) for s in transfer_s],
                     "frames_per_s_best": round(t_frames / min(transfer_s), 1),
                     "frames_per_s_median": round(t_frames / float(np.median(transfer_s)), 1)},
        "sample": {"motions": args.samples, "frames": s_frames, "repeats_s": [round(s, 4) for s in sample_s],
                   "frames_per_s_best": round(s_frames / min(sample_s), 1),
                   "frames_per_s_median": round(s_frames / float(np.median(sample_s)), 1)},
    }
    write_json(args.output, result)
    print(f"model: {gm.path} ({result['model']['params']:,} parameters, window {gm.window}) on {device}, "
          f"{result['threads']} threads, load average {load_before[0]:.2f}")
    for name in ("transfer", "sample"):
        r = result[name]
        print(f"{name}_frames_per_s: {r['frames_per_s_best']:,} best, {r['frames_per_s_median']:,} median "
              f"({r['frames']} frames, {len(r['repeats_s'])} repeats)")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
