"""Speed and step-count quality of the flow prior's sampler (CPU or CUDA).

Models: the VAE at `train.model_path` and the prior at `prior.model_path` when both exist (the
prior's VAE hash is checked), else models of the committed params.yaml sizes with random weights
(the zero-initialised layers re-drawn): speed does not depend on the weights' values, and without a
trained prior no FID is measured. `config.trained` says which ran.

  speed   `--samples` AIST++ samples of one prior window (prior.seq_len frames), `generate.solver`,
          `generate.guidance`, at each of 8 / 16 / 32 steps: flow sampling plus VAE decoding,
          samples/s and frames/s (best and median of `--repeats`, after one warm-up)
  quality FID_k against the real AIST++ test windows (evaluate.window_frames frames, as the generate
          stage cuts them) of `generate.samples_per_genre` samples per genre at 4 and 32 steps,
          with the real-vs-real floor beside it (trained models and a cache only)

Writes `benchmarks/results/prior.json` (`benchmarks/_results.py`) and prints one line per figure.

Run: python benchmarks/bench_prior.py [--device cpu|cuda] [--samples 16] [--repeats 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402
from bench_generate import random_model, timed  # noqa: E402

from flowmimic.generation.checkpoint import load_generation_model  # noqa: E402
from flowmimic.generation.core import decode_latents  # noqa: E402
from flowmimic.generation.flow import LoadedPrior, load_prior, sample_latents  # noqa: E402
from flowmimic.model.prior import FlowPrior, LatentStats, PriorConfig  # noqa: E402
from flowmimic.params import load_params  # noqa: E402
from flowmimic.taxonomy import N_GENRES  # noqa: E402

REPO = _results.REPO
SPEED_STEPS = (8, 16, 32)
FID_STEPS = (4, 32)


def random_prior(params, d_z: int, device: torch.device) -> LoadedPrior:
    torch.manual_seed(0)
    model = FlowPrior(PriorConfig.from_params(params.prior, d_z))
    with torch.no_grad():
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(0.0, 0.02)
    stats = LatentStats(torch.zeros(d_z), torch.ones(d_z))
    return LoadedPrior(model.to(device).eval(), stats, params.prior.seq_len, "-", "random weights", device)


def fid_at(gm, prior, params, steps: int, real_kinetic) -> float:
    from flowmimic.evaluation.generated import WindowSet
    from flowmimic.evaluation.motion_metrics import fid

    p, window = params.generate, params.evaluate.window_frames
    feats = []
    for g in range(1, N_GENRES + 1):
        z = sample_latents(prior, p.samples_per_genre, window, 0, g, steps=steps, solver=p.solver, guidance=p.guidance,
                           generator=torch.Generator().manual_seed(p.seed + g))
        feats.append(decode_latents(gm, z, "aist", g, p.decoder_guidance))
    return fid(real_kinetic, WindowSet.of(torch.cat(feats), float(params.data.fps)).kinetic)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/prior.json)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    params = load_params(args.params)
    load_before = _results.load_average()
    vae_path, prior_path = REPO / params.train.model_path, REPO / params.prior.model_path
    trained = vae_path.exists() and prior_path.exists()
    if trained:
        gm = load_generation_model(vae_path, device)
        prior = load_prior(prior_path, gm.sha256, device, vae_path=vae_path)
    else:
        gm = random_model(params, device)
        prior = random_prior(params, gm.model.config.d_z, device)
    p, frames = params.generate, prior.window

    def run(steps: int):
        z = sample_latents(prior, args.samples, frames, 0, 8, steps=steps, solver=p.solver, guidance=p.guidance,
                           generator=torch.Generator().manual_seed(0))
        return decode_latents(gm, z, "aist", 8, p.decoder_guidance)

    figures: dict[str, float] = {"samples": args.samples, "frames_per_sample": frames}
    repeats: dict[str, list[float]] = {}
    for steps in SPEED_STEPS:
        secs = timed(lambda: run(steps), args.repeats, device)
        rates = [args.samples / s for s in secs]
        repeats[f"steps_{steps}_seconds"] = secs
        figures[f"samples_per_s_{steps}_steps_best"] = round(max(rates), 2)
        figures[f"samples_per_s_{steps}_steps_median"] = round(statistics.median(rates), 2)
        figures[f"frames_per_s_{steps}_steps_best"] = round(max(rates) * frames)
        print(f"{steps} steps: {max(rates):.2f} samples/s best ({max(rates) * frames:,.0f} frames/s), "
              f"{statistics.median(rates):.2f} median")
    if trained:
        from flowmimic.cache.catalog import usable_sequences
        from flowmimic.evaluation.generated import WindowSet
        from flowmimic.evaluation.motion_metrics import fid
        from flowmimic.stages.generate import _windows

        paths = (REPO / params.cache.dir, REPO / params.split.dir, REPO / params.validate_.dir)
        window, fps = params.evaluate.window_frames, float(params.data.fps)
        test = [s for s in usable_sequences(*paths, "test", domains=("aist",)) if s.genre_id > 0]
        train = [s for s in usable_sequences(*paths, "train", domains=("aist",)) if s.genre_id > 0]
        real = WindowSet.of(_windows(test, window)[0], fps).kinetic
        figures["floor_fid_k"] = round(fid(real, WindowSet.of(_windows(train, window)[0], fps).kinetic), 4)
        for steps in FID_STEPS:
            t = time.perf_counter()
            figures[f"fid_k_{steps}_steps"] = round(fid_at(gm, prior, params, steps, real), 4)
            print(f"FID_k at {steps} steps: {figures[f'fid_k_{steps}_steps']} (floor {figures['floor_fid_k']}; "
                  f"{time.perf_counter() - t:.1f} s)")
    _results.save(
        "prior",
        config=vars(args) | {"out": None, "trained": trained, "prior_params": prior.model.num_params(),
                             "vae_params": gm.model.num_params(), "window": frames, "solver": p.solver,
                             "guidance": p.guidance, "d_model": prior.model.config.d_model,
                             "n_layers": prior.model.config.n_layers, "genre": "Krump"},
        threads=torch.get_num_threads(), load_before=load_before, repeats=repeats, figures=figures,
        gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None, out=args.out)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
