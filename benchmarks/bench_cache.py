"""Cache-stage throughput on real-format data with 1 and 2 workers, and peak memory.

Builds params from the repo's params.yaml with every path redirected into a temp folder, writes the
demo dataset there in the real formats (`flowmimic.demo.realformat`: full-size MVHumanNet frames,
~250 KB each, and AIST++ motions of real length, 7-48 s at 60 fps), runs `split`, then times `flowmimic.stages.cache.main`
from an empty cache folder once per worker count. Each configuration runs in a fresh Python process,
so the RSS high-water marks (`getrusage` ru_maxrss) belong to that run alone: `main` is the process
that runs the stage (imports included; with 1 worker it featurises too), `workers` the largest pool
worker (RUSAGE_CHILDREN; forked from main, so shared pages count in both). Linux keeps ru_maxrss
across exec, so this launcher imports neither torch nor flowmimic: the demo is written by a
subprocess too. Throughput counts every
sequence of the splits (skipped ones too, they are read) and the feature frames of the cached ones;
joint frames = feature frames + 1 per sequence, at `data.fps` (20).

`--scale N` multiplies the demo (N x sequences per AIST++ dancer, N x MVHumanNet performers) to show
that peak memory does not grow with the dataset: the stage streams one sequence per worker. Prints
one line per configuration, e.g.

    cache x1 workers=2 (2 torch thread(s) in main): 114 seqs (108 ok) in 4.0 s = 28.23 seqs/s,
    5,136 feature frames/s (5,162 joint frames/s = 258x real time at 20 fps) | runs 4.0/4.1 s |
    speed-up 1.42x | peak RSS main 240 MB (after imports 235 MB), workers 229 MB      (one line)

Each configuration runs `--repeats` times (default 5), interleaved (1, 2, 1, 2, ... workers), and
shows its best time; the machine is shared. Before each pair of runs a pure-Python loop runs twice one
after the other and twice side by side in two processes: `cpu_loop_speedup_2_procs` (best of each)
is what this machine gave two busy processes during the same run, the ceiling the cache's speed-up
is read against (on a shared VM it is often well below 2); `memory_loop_speedup_2_procs` is the same for
a loop bound by memory bandwidth (sums of a 64 MB array), the ceiling for work that streams memory. Every worker, and the stage's own process with 1 worker, runs `--threads` torch threads
(`cache.threads_per_worker`, default 1). Target: 2 workers >= 1.8x one worker.

The speed-up splits into what the pool does and what the machine does (`busy_and_cost`): speed-up =
workers x busy share / CPU cost. The busy share is the part of the workers' cores the run kept busy
(CPU seconds / (workers x wall seconds), relative to one worker's run): idle cores while workers start,
at the tail, or waiting on the stage's process lower it; target >= 0.95 at every scale. The CPU cost is
the run's CPU seconds over the one-worker run's for the same work: over 1 when processes side by side
slow each other (shared caches, memory bandwidth, the host's other tenants), which the reference loops
gauge. Writes `benchmarks/results/cache.json`
(every run, min/median, load; figures per configuration `x<scale>_w<workers>_...`, the fastest run's
CPU seconds (and the stage's own process's part of them), kernel share of them and page faults among
them, busy share and CPU cost, and
`rss_growth_mb`, the largest growth of a peak RSS from the smallest to the largest scale, with its
target: at most 20 MB, i.e. memory does not grow with the dataset).

Run: python benchmarks/bench_cache.py [--workers 1 2] [--scale 1 2] [--repeats 2] [--threads 1] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402  (imports neither torch nor flowmimic)

REPO = Path(__file__).resolve().parents[1]
RSS_GROWTH_MAX_MB = 20.0
SPEEDUP_MIN = 1.8
BUSY_SHARE_MIN = 0.95              # of the cores' time, relative to one worker's: what the pool itself can lose
CEILING_LOOP = 3_000_000           # iterations of the pure-CPU reference loop (~0.15 s each)
MEMORY_LOOP = 60                   # passes of the memory-bound reference loop (~0.15 s each)
MEMORY_LOOP_DOUBLES = 8_000_000
AIST_SEQUENCES_PER_DANCER = 1      # of real length (7-48 s): the demo's 9 dancers x 10 genres = 90 at x1


def redirected_params(params_file: Path, root: Path, scale: int) -> dict:
    """The params mapping with every output/input path under `root` and the demo `scale`d."""
    raw = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    raw["demo"]["root"] = str(root / "demo")
    raw["data"].update(aist_root=str(root / "demo/aist"), mvh_root=str(root / "demo/mvh"))
    raw["split"]["dir"] = str(root / "splits")
    raw["cache"]["dir"] = str(root / "cache")
    raw["validate"].update(dir=str(root / "validate"), metrics=str(root / "metrics/data.json"))
    raw["stats"]["path"] = str(root / "stats/mean_std.npz")
    raw["train"].update(model_path=str(root / "models/motion_vae.pt"), last_path=str(root / "models/last.pt"),
                        live_dir=str(root / "dvclive/train"))
    raw["evaluate"].update(metrics=str(root / "metrics/eval.json"), plots_dir=str(root / "metrics/plots"))
    raw["demo"]["aist_sequences"] = AIST_SEQUENCES_PER_DANCER * scale      # dancer ids are 2 digits: scale sequences per dancer, not dancers
    raw["demo"]["mvh_performers"] *= scale
    return raw


def _mb(kb: int) -> str:
    return f"{kb / 1024:,.0f} MB" if kb else "-"


def child(params_path: str, threads: int) -> None:
    """Run the cache stage once (in this fresh process) and print one JSON line of figures."""
    import torch

    from flowmimic.cache.catalog import read_index
    from flowmimic.params import load_params
    from flowmimic.stages import cache

    params = load_params(params_path)
    before = resource.getrusage(resource.RUSAGE_SELF)
    rss_imports = before.ru_maxrss
    t0 = time.perf_counter()
    cache.main(params)
    seconds = time.perf_counter() - t0
    own, pool = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    rows = read_index(params.cache.dir)
    ok = [r for r in rows if r["status"] == "ok"]
    print(json.dumps({
        "seconds": seconds, "sequences": len(rows), "ok": len(ok),
        "feature_frames": sum(r["frames"] for r in ok),
        "joint_frames": sum(r["frames"] + 1 for r in ok),
        "rss_imports_kb": rss_imports,
        "rss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        # the run's CPU time (this process and its pool workers) and the kernel's part of it, page faults
        "user_s": own.ru_utime - before.ru_utime + pool.ru_utime,
        "kernel_s": own.ru_stime - before.ru_stime + pool.ru_stime,
        "page_faults": own.ru_minflt - before.ru_minflt + pool.ru_minflt,
        "main_cpu_s": own.ru_utime - before.ru_utime + own.ru_stime - before.ru_stime,
        "torch_threads": params.cache.threads_per_worker,
        "main_threads_after": torch.get_num_threads(),
    }))


def prepare(params_path: str) -> None:
    """Write the demo and the splits; print the seconds the demo took as one JSON line."""
    from flowmimic.params import load_params
    from flowmimic.demo.realformat import write_real_format
    from flowmimic.stages import split

    params = load_params(params_path)
    t0 = time.perf_counter()
    write_real_format(params)
    seconds = time.perf_counter() - t0
    split.main(params)
    mvh = list(Path(params.data.mvh_root).rglob("*.pkl"))
    aist = list((Path(params.data.aist_root) / "motions").glob("*.pkl"))
    print(json.dumps({"seconds": seconds, "mvh_files": len(mvh), "mvh_bytes": sum(p.stat().st_size for p in mvh),
                      "aist_files": len(aist), "aist_bytes": sum(p.stat().st_size for p in aist)}))


def in_subprocess(mode: str, raw: dict, path: Path, threads: int = 0) -> dict:
    """Write `raw` to `path`, run this script with `--<mode> path` and return its last JSON line."""
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    cmd = [sys.executable, __file__, f"--{mode}", str(path), "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{mode} with {path} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_once(raw: dict, root: Path, workers: int, k: int, threads: int) -> dict:
    """One cache run with `workers` from an empty cache folder in a fresh subprocess."""
    raw = json.loads(json.dumps(raw))
    raw["cache"]["dir"] = str(root / f"cache-w{workers}-r{k}")
    raw["cache"]["workers"] = workers
    raw["cache"]["threads_per_worker"] = threads
    out = in_subprocess("child", raw, root / f"params-w{workers}-r{k}.yaml", threads)
    shutil.rmtree(raw["cache"]["dir"])
    return out


def best_of(runs: list[dict]) -> dict:
    """The fastest run's figures; peak RSS the largest over the runs; "times" every run's seconds."""
    best = min(runs, key=lambda r: r["seconds"])
    peaks = {k: max(r[k] for r in runs) for k in ("rss_imports_kb", "rss_self_kb", "rss_children_kb")}
    return {**best, **peaks, "times": [r["seconds"] for r in runs]}


def busy_and_cost(seconds: float, cpu_s: float, workers: int, seconds_1: float, cpu_s_1: float) -> tuple[float, float]:
    """Where a `workers`-worker run's speed-up over one worker comes from: (the share of its `workers`
    cores that the run kept busy, relative to the share the one-worker run kept its core busy; the
    CPU seconds it spent relative to the one-worker run's, for the same work). The speed-up is
    `workers * busy / cost`: a busy share under 1 is time the pool left a core idle (start-up, the
    tail, the stage's own process), a cost over 1 is the same work costing more CPU when processes
    run side by side (shared caches, memory bandwidth, a busy host) or the pool's own overhead."""
    busy = (cpu_s / (workers * seconds)) / (cpu_s_1 / seconds_1)
    return busy, cpu_s / cpu_s_1


def _spin(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


def _stream(n: int) -> float:
    """`n` sums of a 64 MB float64 array: bound by memory bandwidth, far beyond the caches."""
    import numpy as np     # in the pool's worker only: the launcher stays free of numpy (ru_maxrss)

    a = np.ones(MEMORY_LOOP_DOUBLES)
    return sum(float(a.sum()) for _ in range(n))


def loop_pair(fn, n: int) -> tuple[float, float]:
    """Seconds for two runs of `fn(n)` one after the other in one process, and side by side in two:
    what this machine gives two busy processes right now, for that kind of work."""
    with mp.get_context("fork").Pool(1) as pool:
        pool.map(fn, [1])                                  # first-call costs (imports) out of the timing
        t0 = time.perf_counter()
        pool.map(fn, [n, n], chunksize=2)
        one = time.perf_counter() - t0
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(fn, [1, 1], chunksize=1)
        t0 = time.perf_counter()
        pool.map(fn, [n, n], chunksize=1)
        two = time.perf_counter() - t0
    return one, two


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scale", type=int, nargs="+", default=[1, 2], help="demo size multiplier(s)")
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--repeats", type=int, default=5,
                    help="runs per configuration, interleaved; the best time is shown (default 5)")
    ap.add_argument("--threads", type=int, default=1, help="cache.threads_per_worker (every path of the stage)")
    ap.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/cache.json)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--prepare", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child or args.prepare:
        child(args.child, args.threads) if args.child else prepare(args.prepare)
        return

    fps = yaml.safe_load(args.params.read_text(encoding="utf-8"))["data"]["fps"]
    print(f"params: {args.params} (paths redirected to a temp folder); launcher peak RSS "
          f"{_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)}, inherited by each run's 'main'")
    load_before = _results.load_average()
    repeats: dict[str, list[float]] = {}
    figures: dict[str, float | int] = {}
    threads = set()
    ceiling: dict[str, list[float]] = {"one_s": [], "two_s": [], "mem_one_s": [], "mem_two_s": []}
    for scale in args.scale:
        with tempfile.TemporaryDirectory(prefix="flowmimic-bench-cache-") as tmp:
            root = Path(tmp)
            raw = redirected_params(args.params, root, scale)
            prep = in_subprocess("prepare", raw, root / "params-demo.yaml")
            demo_s = prep["seconds"]
            raw_bytes = prep["mvh_bytes"] + prep["aist_bytes"]
            # Repeats interleave the worker counts (1, 2, 1, 2, ...), each pair after a pure-CPU reference
            # pair, so that a slow spell of a shared machine hits every configuration alike.
            runs: dict[int, list[dict]] = {w: [] for w in args.workers}
            for k in range(args.repeats):
                for (one_key, two_key), (fn, n) in ((("one_s", "two_s"), (_spin, CEILING_LOOP)),
                                                     (("mem_one_s", "mem_two_s"), (_stream, MEMORY_LOOP))):
                    one, two = loop_pair(fn, n)
                    ceiling[one_key].append(one)
                    ceiling[two_key].append(two)
                for workers in args.workers:
                    runs[workers].append(run_once(raw, root, workers, k, args.threads))
            base = None
            for workers in args.workers:
                r = best_of(runs[workers])
                threads.add(r["torch_threads"])
                cpu_s = r["user_s"] + r["kernel_s"]
                base = base or (r["seconds"], cpu_s)
                s = r["seconds"]
                busy, cost = busy_and_cost(s, cpu_s, workers, *base)
                runs_txt = "/".join(f"{t:.1f}" for t in r["times"])
                print(f"cache x{scale} workers={workers} ({r['torch_threads']} torch thread(s) per worker): "
                      f"{r['sequences']} seqs ({r['ok']} ok) in {s:.1f} s = {r['sequences'] / s:.2f} seqs/s, "
                      f"{r['feature_frames'] / s:,.0f} feature frames/s ({r['joint_frames'] / s:,.0f} joint frames/s "
                      f"= {r['joint_frames'] / fps / s:.0f}x real time at {fps} fps) | runs {runs_txt} s | "
                      f"{prep['mvh_files'] / s:,.0f} MVHumanNet frame files/s, {raw_bytes / s / 1e6:,.1f} MB/s read | "
                      f"speed-up {base[0] / s:.2f}x = {workers} x busy {busy:.3f} / CPU cost {cost:.3f} | CPU {cpu_s:.1f} s "
                      f"({r['kernel_s'] / cpu_s:.0%} kernel; {r['main_cpu_s']:.2f} s in the stage's process), {r['page_faults']:,} page faults | peak RSS main {_mb(r['rss_self_kb'])} "
                      f"(after imports {_mb(r['rss_imports_kb'])}), workers {_mb(r['rss_children_kb'])}")
                key = f"x{scale}_w{workers}"
                repeats[f"{key}_seconds"] = r["times"]
                figures.update({
                    f"{key}_sequences": r["sequences"], f"{key}_ok": r["ok"], f"{key}_feature_frames": r["feature_frames"],
                    f"{key}_seconds": round(s, 2), f"{key}_seqs_per_s": round(r["sequences"] / s, 1),
                    f"{key}_feature_frames_per_s": round(r["feature_frames"] / s), f"{key}_speedup": round(base[0] / s, 2),
                    f"{key}_busy_share": round(busy, 3), f"{key}_cpu_cost": round(cost, 3),
                    f"{key}_mvh_files_per_s": round(prep["mvh_files"] / s), f"{key}_mb_read_per_s": round(raw_bytes / s / 1e6, 1),
                    f"{key}_cpu_s": round(cpu_s, 2), f"{key}_main_cpu_s": round(r["main_cpu_s"], 2),
                    f"{key}_kernel_cpu_share": round(r["kernel_s"] / cpu_s, 3),
                    f"{key}_page_faults": r["page_faults"],
                    f"{key}_rss_main_mb": round(r["rss_self_kb"] / 1024),
                    f"{key}_rss_workers_mb": round(r["rss_children_kb"] / 1024) if r["rss_children_kb"] else None,
                })
            print(f"demo x{scale}: {r['feature_frames']:,} feature frames = {r['joint_frames'] / fps / 60:.1f} min "
                  f"of motion; demo generation took {demo_s:.1f} s (not timed above)")
            figures[f"x{scale}_motion_minutes"] = round(r["joint_frames"] / fps / 60, 1)
            figures.update({f"x{scale}_{k}": v for k, v in prep.items() if k != "seconds"})
    targets = {}
    if 1 in args.workers and 2 in args.workers:
        lo = min(args.scale)
        speedup = figures[f"x{lo}_w1_seconds"] / figures[f"x{lo}_w2_seconds"]
        figures["speedup_2_workers"] = round(speedup, 2)
        targets["speedup_2_workers"] = _results.target(speedup, min=SPEEDUP_MIN)
        figures["busy_share_2_workers"] = figures[f"x{lo}_w2_busy_share"]
        figures["cpu_cost_2_workers"] = figures[f"x{lo}_w2_cpu_cost"]
        busy_min = min(figures[f"x{s}_w2_busy_share"] for s in args.scale)
        figures["busy_share_2_workers_min"] = busy_min
        targets["busy_share_2_workers_min"] = _results.target(busy_min, min=BUSY_SHARE_MIN)
        cpu = min(ceiling["one_s"]) / min(ceiling["two_s"])
        figures["cpu_loop_speedup_2_procs"] = round(cpu, 2)
        figures["speedup_share_of_cpu_loop"] = round(speedup / cpu, 2)
        repeats["cpu_loop_one_after_other_seconds"] = ceiling["one_s"]
        repeats["cpu_loop_side_by_side_seconds"] = ceiling["two_s"]
        mem = min(ceiling["mem_one_s"]) / min(ceiling["mem_two_s"])
        figures["memory_loop_speedup_2_procs"] = round(mem, 2)
        repeats["memory_loop_one_after_other_seconds"] = ceiling["mem_one_s"]
        repeats["memory_loop_side_by_side_seconds"] = ceiling["mem_two_s"]
        print(f"2 workers {speedup:.2f}x one worker; the same machine in the same run gives a pure-CPU loop "
              f"{cpu:.2f}x and a memory-bound loop {mem:.2f}x in two processes (best of {len(ceiling['one_s'])}): "
              f"the cache reaches {speedup / cpu:.0%} of the first "
              f"(target {SPEEDUP_MIN}x: {'met' if speedup >= SPEEDUP_MIN else 'MISSED'}); the pool kept the cores "
              f"busy {busy_min:.3f} of the time at worst (target {BUSY_SHARE_MIN}: "
              f"{'met' if busy_min >= BUSY_SHARE_MIN else 'MISSED'})")
    if len(args.scale) > 1:
        lo, hi = min(args.scale), max(args.scale)
        growth = max(figures[f"x{hi}_w{w}_{k}"] - figures[f"x{lo}_w{w}_{k}"] for w in args.workers
                     for k in ("rss_main_mb", "rss_workers_mb") if figures[f"x{lo}_w{w}_{k}"] is not None)
        figures["rss_growth_mb"] = growth
        targets["rss_growth_mb"] = _results.target(growth, max=RSS_GROWTH_MAX_MB)
        print(f"peak RSS growth x{lo} -> x{hi}: {growth} MB (target <= {RSS_GROWTH_MAX_MB:.0f} MB: "
              f"{'met' if targets['rss_growth_mb']['met'] else 'MISSED'})")
    _results.save("cache", config=vars(args) | {"out": None, "child": None, "prepare": None, "fps": fps},
                  threads=max(threads), load_before=load_before, repeats=repeats, figures=figures, targets=targets,
                  out=args.out)

if __name__ == "__main__":
    main()
