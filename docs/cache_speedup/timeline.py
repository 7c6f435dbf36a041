"""Per-job timeline of the cache's pool: how busy each worker was, on make_tree.py's tree.

Runs the stage's own job function (fingerprint, read, featurise, save) with 1 worker in this process
and with 2 through `flowmimic.cache.pool.pooled_rows`, ROUNDS times interleaved, timing every job
where it runs. Prints per run: wall seconds, the stage process's CPU seconds, and per worker the jobs
it ran, its busy (wall) and CPU seconds inside jobs, how long after the run's start its first job
began and how long before the run's end its last one finished.

Run from the repo root: python docs/cache_speedup/timeline.py [ROOT] [ROUNDS]
"""
import json
import os
import shutil
import sys
import time
from functools import partial

import torch

from flowmimic.cache.heap import keep_freed_memory
from flowmimic.cache.jobs import config_fingerprint, fingerprinted, list_jobs, process_job
from flowmimic.cache.pool import pooled_rows
from flowmimic.params import load_params
from flowmimic.sources import aist_reader_args


def timed(job, inner):
    t0, c0 = time.perf_counter(), time.thread_time()
    row = inner(job)
    row["t"] = (os.getpid(), t0, time.perf_counter(), time.thread_time() - c0)
    return row


def run(root: str, workers: int) -> dict:
    p = load_params(f"{root}/p{workers}.yaml")
    shutil.rmtree(p.cache.dir, ignore_errors=True)
    jobs = list_jobs(p)
    inner = partial(fingerprinted, work=partial(process_job, params=p, reader_args=aist_reader_args(p.data)),
                    config_fp=config_fingerprint(p))
    work = partial(timed, inner=inner)
    t0, c0 = time.perf_counter(), time.process_time()
    rows = [work(j) for j in jobs] if workers == 1 else list(pooled_rows(jobs, workers, 1, work, "fork"))
    t1, main_cpu = time.perf_counter(), time.process_time() - c0
    per: dict[int, list] = {}
    for r in rows:
        pid, a, b, cpu = r["t"]
        per.setdefault(pid, []).append((a, b, cpu))
    out = {"workers": workers, "wall_s": round(t1 - t0, 3), "stage_process_cpu_s": round(main_cpu, 3), "per_worker": []}
    for ts in per.values():
        ts.sort()
        out["per_worker"].append({"jobs": len(ts), "busy_s": round(sum(b - a for a, b, _ in ts), 3),
                                  "cpu_s": round(sum(c for *_, c in ts), 3), "first_job_after_s": round(ts[0][0] - t0, 3),
                                  "last_job_before_end_s": round(t1 - ts[-1][1], 3)})
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    keep_freed_memory()              # as the stage's process does (`run_jobs`); forked workers inherit it
    root = sys.argv[1] if len(sys.argv) > 1 else "/tmp/bc"
    for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
        for w in (1, 2):
            print(json.dumps(run(root, w)), flush=True)
