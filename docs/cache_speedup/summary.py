"""Print the table of README.md in this folder from the measurement files beside it.

Paired ratios: each repeat's 1-worker seconds over the 2-worker seconds of the same round (the runs are
interleaved, so a slow spell of the shared VM hits both); their median with a 95 % percentile
bootstrap interval (10,000 resamples, seed 0).
Run: python docs/cache_speedup/summary.py
"""
import json
import random
import re
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def median_ci(values):
    rng = random.Random(0)
    boot = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(10_000))
    return statistics.median(values), boot[249], boot[9749]


print("| run | best-of-15 speed-up | paired median [95 % CI] | pure-CPU loop, best-of / paired median |")
print("|---|---|---|---|")
for name in ("bench_cache_x1_15_repeats_pool_b99c8ff.json", "bench_cache_x1_15_repeats_executor.json"):
    doc = json.loads((HERE / name).read_text())
    r = doc["repeats"]
    one, two = r["x1_w1_seconds"], r["x1_w2_seconds"]
    m, lo, hi = median_ci([a / b for a, b in zip(one, two)])
    c1, c2 = r["cpu_loop_one_after_other_seconds"], r["cpu_loop_side_by_side_seconds"]
    cpu = statistics.median([a / b for a, b in zip(c1, c2)])
    print(f"| `{name}` | {min(one) / min(two):.2f} | {m:.3f} [{lo:.3f}, {hi:.3f}] | {min(c1) / min(c2):.2f} / {cpu:.2f} |")
runs = {}
for line in (HERE / "ab_pool_vs_executor.log").read_text().splitlines():
    runs.setdefault(line.split()[0], []).append(float(re.search(r"wall ([\d.]+)", line).group(1)))
m, lo, hi = median_ci([a / b for a, b in zip(runs["old2"], runs["new2"])])
print(f"\nA/B, 2 workers, Pool seconds / executor seconds over {len(runs['old2'])} interleaved rounds: "
      f"median {m:.3f} [{lo:.3f}, {hi:.3f}]")
