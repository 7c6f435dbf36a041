"""MVHumanNet frame reading on real-format frames: the safe joints-only reader vs plain (unsafe) `pickle.load`.

Writes `--frames` real-format frames (`flowmimic.demo.realformat`: every key, shape, dtype and
pickling of a released frame, ~250 KB) of one demo studio motion to a temp folder, then reads all of
them with, in turn: plain `pickle.load` (what an unsafe reader would do; every storage decoded),
the full safe loader (`flowmimic.io.safe_load_pickle`: every storage decoded through torch's
weights-only loader, as the reader did before) and the reader the cache uses
(`sources.mvhumannet.load_frame_joints`: every global checked, only `joints` decoded). The three
run interleaved, `--repeats` rounds in one process with one torch thread, warm page cache, so the
ratio compares them under the same machine load. Also records the process's RSS after each round
(memory flat: the reader keeps nothing between frames).

Target: the joints reader >= 2x plain `pickle.load`'s frames/s (best of the rounds each).

Run: python benchmarks/bench_read.py [--frames 400] [--repeats 5]
"""

from __future__ import annotations

import argparse
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

SPEEDUP_MIN = 2.0


def _rss_mb() -> float:
    """Current resident set size (MB), from /proc (ru_maxrss is a high-water mark)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def write_frames(folder: Path, n: int) -> list[Path]:
    from flowmimic.demo.clips import studio_clips
    from flowmimic.demo.dataset import MVH_RELEASE_STRIDE, mvh_frames
    from flowmimic.demo.realformat import real_frame_bytes
    from flowmimic.params import load_params
    from flowmimic.sources.common import canonical_rotation

    data = load_params(_results.REPO / "params.yaml").data
    motion = studio_clips(1, (n - 1) * MVH_RELEASE_STRIDE + 1, fps=25.0, seed=0)
    frames = mvh_frames(motion, canonical_rotation(data.zup_to_yup, data.mvh.axis_remap), [(0.0,) * 10])[0]
    paths = []
    for k, frame in enumerate(frames):
        p = folder / f"{k * MVH_RELEASE_STRIDE:04d}.pkl"
        p.write_bytes(real_frame_bytes(frame))
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from flowmimic.io import safe_load_pickle
    from flowmimic.sources.mvhumannet import load_frame_joints

    torch.set_num_threads(1)

    def plain(p: Path) -> object:
        with open(p, "rb") as f:
            return pickle.load(f)["joints"]

    readers = {"plain_pickle": plain, "safe_full": lambda p: safe_load_pickle(p)["joints"],
               "safe_joints_only": load_frame_joints}
    load_before = _results.load_average()
    with tempfile.TemporaryDirectory(prefix="flowmimic-bench-read-") as tmp:
        paths = write_frames(Path(tmp), args.frames)
        frame_bytes = sum(p.stat().st_size for p in paths) / len(paths)
        for p in paths:                                      # warm the page cache
            p.read_bytes()
        for read in readers.values():                        # and every code path
            read(paths[0])
        rate: dict[str, list[float]] = {k: [] for k in readers}
        rss: list[float] = [_rss_mb()]
        for _ in range(args.repeats):
            for name, read in readers.items():
                t0 = time.perf_counter()
                for p in paths:
                    read(p)
                rate[name].append(round(len(paths) / (time.perf_counter() - t0), 1))
            rss.append(_rss_mb())
    best = {k: max(v) for k, v in rate.items()}
    speedup = best["safe_joints_only"] / best["plain_pickle"]
    for k in readers:
        print(f"{k:17s} best {best[k]:8,.0f} frames/s  rounds {rate[k]}")
    print(f"joints-only safe reader / plain pickle.load: {speedup:.2f}x (target >= {SPEEDUP_MIN}x); "
          f"{frame_bytes:,.0f} bytes per frame; RSS per round {rss} MB")
    figures = {f"{k}_frames_per_s": round(v) for k, v in best.items()}
    figures.update({
        "speedup_vs_plain": round(speedup, 2),
        "full_safe_vs_plain": round(best["safe_full"] / best["plain_pickle"], 2),
        "bytes_per_frame": round(frame_bytes),
        "joints_only_mb_per_s": round(best["safe_joints_only"] * frame_bytes / 1e6, 1),
        "rss_first_mb": rss[0], "rss_last_mb": rss[-1], "rss_growth_mb": round(rss[-1] - rss[0], 1),
    })
    _results.save("read", config=vars(args) | {"out": None}, threads=1, load_before=load_before,
                  repeats={f"{k}_frames_per_s": v for k, v in rate.items()} | {"rss_mb": rss}, figures=figures,
                  targets={"speedup_vs_plain": _results.target(speedup, min=SPEEDUP_MIN)}, out=args.out)


if __name__ == "__main__":
    main()
