"""How faithfully exported motion reads back, and how fast it is written (`flowmimic.export`).

Measures, through `flowmimic.export.roundtrip` (what tests/test_export.py checks with), on
HumanML3D's published sample (`tests/data/humanml3d/new_joints_012314.npy`, 20 fps, HumanML3D's
target skeleton) and on demo motions (`flowmimic.demo.clips`: one dance of each of the 10 genres and
one scaled studio performer, `--seconds` each at data.fps):

  pkl        the sample exported as an AIST++ `.pkl` on the built-in SMPL skeleton and read back by
             our AIST++ reader: mean and max joint error (mm; the sample's pelvis and chest are not
             the built-in skeleton's shape, so this is not zero); the demo dances the same way (µm)
  bone_fix   `export.ik.bone_fix_error` of the sample plus N(0, sigma) noise per coordinate
             (`--seed`, the same for each sigma) for sigma = `--sigmas-mm`: mean and max (mm)
  bvh        BVH round trip through bvhio (an independent reader): max joint error (µm) on the
             sample (both skeletons, m and cm) and on the demo motions (median skeleton, m)
  write      `write_bvh` and `write_aist_pkl` of the demo dances, input frames/s, best and median of
             `--repeats`

Writes `benchmarks/results/export.json` and prints one line per figure.

Run: python benchmarks/bench_export.py [--seconds 8] [--sigmas-mm 5 10 20] [--seed 0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

from flowmimic.body.skeleton import N_JOINTS  # noqa: E402
from flowmimic.demo.clips import dance_clips, studio_clips  # noqa: E402
from flowmimic.export.bvh import write_bvh  # noqa: E402
from flowmimic.export.ik import bone_fix_error  # noqa: E402
from flowmimic.export.roundtrip import aist_pkl_round_trip, bvh_round_trip  # noqa: E402
from flowmimic.export.smpl import write_aist_pkl  # noqa: E402
from flowmimic.params import load_params  # noqa: E402
from flowmimic.taxonomy import GENRES  # noqa: E402

REPO = _results.REPO
SAMPLE = REPO / "tests" / "data" / "humanml3d" / "new_joints_012314.npy"
SAMPLE_FPS = 20.0                                   # HumanML3D's frame rate
AIST_NAME = "gBR_sBM_cAll_d01_mBR0_ch01.pkl"        # the AIST++ reader parses the genre from the name


def mm(metres: float) -> float:
    return round(metres * 1e3, 2)


def um(metres: float) -> float:
    return round(metres * 1e6, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each demo motion")
    ap.add_argument("--sigmas-mm", type=float, nargs="+", default=[5.0, 10.0, 20.0])
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise added for bone_fix")
    ap.add_argument("--repeats", type=int, default=3, help="write speed: timed runs")
    ap.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/export.json)")
    args = ap.parse_args()
    data = load_params(args.params).data
    if data.fps != SAMPLE_FPS:
        raise SystemExit(f"{args.params}: data.fps is {data.fps}, the sample is at {SAMPLE_FPS} fps")
    load_before = _results.load_average()

    sample = np.load(SAMPLE).astype(np.float64)
    frames = int(round(args.seconds * data.fps))
    dances = [dance_clips(len(GENRES), frames, data.fps, seed=0).sequence(b)[2][:, :N_JOINTS].double().numpy()
              for b in range(len(GENRES))]
    studio = studio_clips(1, frames, data.fps, seed=0).sequence(0)[2][:, :N_JOINTS].double().numpy()
    figures: dict[str, float | int] = {"sample_frames": sample.shape[0], "demo_frames_each": frames}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        err = aist_pkl_round_trip(tmp / AIST_NAME, sample, data)
        figures |= {"sample_pkl_mean_mm": mm(err.mean_m), "sample_pkl_max_mm": mm(err.max_m)}
        figures["demo_pkl_max_um"] = um(max(aist_pkl_round_trip(tmp / AIST_NAME, d, data).max_m for d in dances))

        for sigma in args.sigmas_mm:
            noisy = sample + np.random.default_rng(args.seed).normal(0.0, sigma / 1e3, sample.shape)
            err = bone_fix_error(noisy)
            key = f"bone_fix_sigma{sigma:g}".replace(".", "p")        # a dot would split the key path
            figures |= {f"{key}_mean_mm": mm(err.mean_m), f"{key}_max_mm": mm(err.max_m)}

        figures["sample_bvh_max_um"] = um(max(
            bvh_round_trip(tmp / "sample.bvh", sample, SAMPLE_FPS, skeleton=skeleton, units=units).max_m
            for skeleton in ("median", "target") for units in ("m", "cm")))
        figures["demo_bvh_max_um"] = um(max(bvh_round_trip(tmp / "demo.bvh", m, data.fps).max_m
                                            for m in [*dances, studio]))

        timings: dict[str, list[float]] = {"bvh_write_seconds": [], "pkl_write_seconds": []}
        writers = {"bvh_write_seconds": lambda d: write_bvh(tmp / "w.bvh", d, data.fps),
                   "pkl_write_seconds": lambda d: write_aist_pkl(tmp / AIST_NAME, d, data.fps, data)}
        for name, write in writers.items():
            write(dances[0])                                                  # warm-up
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                for d in dances:
                    write(d)
                timings[name].append(time.perf_counter() - t0)
    total = frames * len(dances)
    for fmt in ("bvh", "pkl"):
        rates = [total / s for s in timings[f"{fmt}_write_seconds"]]
        figures |= {f"{fmt}_write_frames_per_s_best": round(max(rates)),
                    f"{fmt}_write_frames_per_s_median": round(statistics.median(rates))}

    for key, value in figures.items():
        print(f"{key}: {value:,}")
    _results.save("export", config=vars(args) | {"out": None, "sample": SAMPLE, "sample_fps": SAMPLE_FPS,
                                                 "fps": data.fps, "demo_dances": len(dances), "demo_studio": 1},
                  threads=torch.get_num_threads(), load_before=load_before, repeats=timings, figures=figures, out=args.out)


if __name__ == "__main__":
    main()
