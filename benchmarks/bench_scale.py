"""Scale run: split -> cache -> validate -> stats on a real-format tree, with an extrapolation to the full datasets.

Writes (not timed) a real-format tree (`flowmimic.demo.realformat`) of `--mvh-sequences` MVHumanNet
sequences (default 60 = 1/1000 of MVHumanNet's 60,000) with full-size ~250 KB frame files, and
`--aist-sequences-per-dancer` x 90 AIST++ motions of real length (7-48 s at 60 fps; default 2 -> 180,
about 1/8 of AIST++'s 1,408: the full set would not fit the session time on the 2-core machine).
Then runs each stage in a fresh process (the cache with `--workers` workers, one torch thread each)
and records wall seconds, CPU seconds (the process and its pool workers) and peak RSS of the stage
process and of its largest worker. A second cache run on the MVHumanNet sequences alone (own cache
folder) separates MVHumanNet's per-frame cost from AIST++'s.

Reports frames/s, files/s, bytes/s, peak RSS per process and the extrapolation to the full datasets
on `--cores` cores (hours, TB read), with the bottleneck: CPU decode when the stage keeps its cores
busy (CPU seconds ~ wall x workers) on a warm page cache, and the read bandwidth the storage must
sustain at that rate (above what a filesystem delivers, IO is the bottleneck instead).

Dataset sizes used for the extrapolation: MVHumanNet 60,000 sequences, each with as many released
frames as this tree's mean (an assumption: the frames per sequence of the real release are not
measured here); AIST++ 1,408 sequences, 10.1 hours at 60 fps (Li et al., ICCV 2021).

Run: python benchmarks/bench_scale.py [--mvh-sequences 60] [--aist-sequences-per-dancer 2] [--workers 2] [--cores 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402
from bench_cache import redirected_params  # noqa: E402

MVH_SEQUENCES_FULL = 60_000
AIST_SEQUENCES_FULL = 1_408
AIST_HOURS_FULL = 10.1
STAGES = ("split", "cache", "validate", "stats")


def child(stage: str, params_path: str) -> None:
    """Run one stage in this fresh process; print wall/CPU seconds and peak RSS as one JSON line."""
    from flowmimic.params import load_params

    params = load_params(params_path)
    if stage == "prepare":
        from flowmimic.demo.realformat import write_real_format
        write_real_format(params)
        print(json.dumps({}))
        return
    import importlib

    module = importlib.import_module(f"flowmimic.stages.{stage}")

    def cpu() -> float:              # this process and its reaped pool workers, user + system
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    cpu0, t0 = cpu(), time.perf_counter()
    module.main(params)
    wall = time.perf_counter() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"seconds": wall, "cpu_s": cpu() - cpu0,
                      "rss_main_kb": me.ru_maxrss, "rss_worker_kb": kids.ru_maxrss}))


def run(stage: str, raw: dict, path: Path) -> dict:
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    proc = subprocess.run([sys.executable, __file__, "--child", stage, str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{stage} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mvh-sequences", type=int, default=60)
    ap.add_argument("--aist-sequences-per-dancer", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cores", type=int, default=64, help="cores of the machine the extrapolation is for")
    ap.add_argument("--params", type=Path, default=_results.REPO / "params.yaml")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    load_before = _results.load_average()
    with tempfile.TemporaryDirectory(prefix="flowmimic-bench-scale-") as tmp:
        root = Path(tmp)
        raw = redirected_params(args.params, root, 1)
        raw["demo"].update(aist_sequences=args.aist_sequences_per_dancer, mvh_outfits=2, inject_bad=False,
                           mvh_performers=args.mvh_sequences // 2)
        raw["cache"].update(workers=args.workers, threads_per_worker=1)
        t0 = time.perf_counter()
        run("prepare", raw, root / "params.yaml")
        prepare_s = time.perf_counter() - t0
        mvh = sorted(Path(raw["data"]["mvh_root"]).rglob("*.pkl"))
        aist = sorted((Path(raw["data"]["aist_root"]) / "motions").glob("*.pkl"))
        mvh_bytes, aist_bytes = sum(p.stat().st_size for p in mvh), sum(p.stat().st_size for p in aist)
        aist_frames_60 = sum(int(_n_frames(p)) for p in aist)
        res = {stage: run(stage, raw, root / "params.yaml") for stage in STAGES}
        # MVHumanNet alone: same splits with AIST++'s emptied, its own cache folder
        only = json.loads(json.dumps(raw))
        only["split"]["dir"], only["cache"]["dir"] = str(root / "splits-mvh"), str(root / "cache-mvh")
        shutil.copytree(raw["split"]["dir"], only["split"]["dir"])
        for f in Path(only["split"]["dir"]).glob("aist_*.txt"):
            f.write_text("")
        mvh_only = run("cache", only, root / "params-mvh.yaml")
    n_seq = len(aist) + len({p.parent.parent for p in mvh})
    c = res["cache"]
    figures = {
        "mvh_sequences": len({p.parent.parent for p in mvh}), "mvh_frame_files": len(mvh), "mvh_gb": round(mvh_bytes / 1e9, 2),
        "bytes_per_mvh_frame": round(mvh_bytes / len(mvh)), "aist_sequences": len(aist),
        "aist_hours": round(aist_frames_60 / 60 / 3600, 2), "prepare_s": round(prepare_s, 1),
        **{f"{s}_s": round(res[s]["seconds"], 2) for s in STAGES},
        **{f"{s}_rss_main_mb": round(res[s]["rss_main_kb"] / 1024) for s in STAGES},
        "cache_rss_worker_mb": round(c["rss_worker_kb"] / 1024),
        "cache_files_per_s": round((len(mvh) + len(aist)) / c["seconds"]),
        "cache_sequences_per_s": round(n_seq / c["seconds"], 1),
        "cache_mb_per_s": round((mvh_bytes + aist_bytes) / c["seconds"] / 1e6, 1),
        "cache_cpu_utilisation": round(c["cpu_s"] / (c["seconds"] * args.workers), 2),
        "mvh_only_s": round(mvh_only["seconds"], 2),
        "mvh_frames_per_s": round(len(mvh) / mvh_only["seconds"]),
        "mvh_frames_per_cpu_s": round(len(mvh) / mvh_only["cpu_s"]),
        "mvh_mb_per_cpu_s": round(mvh_bytes / mvh_only["cpu_s"] / 1e6, 1),
    }
    aist_cpu_s = max(c["cpu_s"] - mvh_only["cpu_s"], 1e-9)
    figures["aist_frames_per_cpu_s"] = round(aist_frames_60 / aist_cpu_s)       # native 60 fps frames
    # extrapolation: CPU seconds per item, spread over --cores cores (one worker per core)
    mvh_frames_full = MVH_SEQUENCES_FULL * len(mvh) / figures["mvh_sequences"]
    mvh_h = mvh_frames_full / figures["mvh_frames_per_cpu_s"] / args.cores / 3600
    aist_h = AIST_HOURS_FULL * 3600 * 60 / figures["aist_frames_per_cpu_s"] / args.cores / 3600
    figures.update({
        "full_mvh_frames_millions": round(mvh_frames_full / 1e6, 2),
        "full_mvh_tb": round(mvh_frames_full * mvh_bytes / len(mvh) / 1e12, 2),
        "full_mvh_cpu_hours": round(mvh_h * args.cores, 2), "full_aist_cpu_hours": round(aist_h * args.cores, 3),
        "full_mvh_minutes_on_cores": round(mvh_h * 60, 2), "full_aist_minutes_on_cores": round(aist_h * 60, 3),
        "full_aist_gb": round(aist_bytes / aist_frames_60 * AIST_HOURS_FULL * 3600 * 60 / 1e9, 2),
        "cores": args.cores,
        "full_mvh_read_gb_per_s_needed": round(figures["mvh_mb_per_cpu_s"] * args.cores / 1e3, 1),
    })
    busy = figures["cache_cpu_utilisation"] >= 0.8
    bottleneck = (f"here: {'CPU decode + features (workers busy' if busy else 'the shared machine (other jobs'}, CPU "
                  f"utilisation {figures['cache_cpu_utilisation']}, load {load_before[0]} on {_results.machine()['cores']} "
                  f"cores; warm page cache, so no IO wait); on a cluster: IO for MVHumanNet -- one core decodes "
                  f"{figures['mvh_mb_per_cpu_s']} MB/s of frame files, so {args.cores} cores need "
                  f"{figures['full_mvh_read_gb_per_s_needed']} GB/s, more than most shared filesystems deliver; CPU "
                  f"(forward kinematics + features) for AIST++, whose files are small")
    for k, v in figures.items():
        print(f"{k}: {v}")
    print("bottleneck:", bottleneck)
    _results.save("scale", config=vars(args) | {"out": None, "child": None,
                                                "mvh_sequences_full": MVH_SEQUENCES_FULL,
                                                "aist_sequences_full": AIST_SEQUENCES_FULL,
                                                "aist_hours_full": AIST_HOURS_FULL, "bottleneck": bottleneck},
                  threads=1, load_before=load_before,
                  repeats={f"{s}_s": [round(res[s]["seconds"], 2)] for s in STAGES} | {"mvh_only_s": [round(mvh_only["seconds"], 2)]},
                  figures=figures, out=args.out)


def _n_frames(path: Path) -> int:
    from flowmimic.io import safe_load_pickle       # imported late: the launcher keeps its RSS small
    return len(safe_load_pickle(path)["smpl_poses"])


if __name__ == "__main__":
    main()
