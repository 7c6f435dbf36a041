"""Pass `dvc repro`'s output through and record each stage's wall time (used by scripts/demo.sh).

Reads the output line by line, notes the time of each "Running stage '<name>'" line and of the end,
and writes `benchmarks/results/demo_run.json` (the benchmarks' result format: date, machine, torch
threads from params.yaml, load before/after) with the seconds of every stage that ran. Stages DVC
skipped (unchanged) keep the time and date of the run that last executed them, so the file always
describes a complete pipeline. A stage that picked up saved work (its log says "resuming from",
"already finished" or "N up to date" with N > 0: a resumed trainer, a partly reused cache) ran
shorter than a from-scratch run, so its time is listed under `partial_runs` and the stage keeps its
last from-scratch time. Targets: the whole demo within 12 minutes, `train` within 5, on 2 CPU
cores; the flow prior (`latents` + `train_prior` + the flow part of `generate`, whose seconds
generate logs as "generate: timings {...}") within 3. It only records: with `set -o pipefail`
the caller still exits with dvc's status (a
failed run's last stage is timed until the failure).

Run: dvc repro 2>&1 | python scripts/stage_times.py
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _results  # noqa: E402

OUT = _results.RESULTS / "demo_run.json"
RUNNING = re.compile(r"Running stage '([A-Za-z0-9_@-]+)'")
REUSED = re.compile(r"resuming from|already finished|\b[1-9][0-9]* up to date")
TARGETS_S = {"total_s": 720.0, "train_s": 300.0, "flow_prior_s": 180.0}
TIMINGS = re.compile(r"generate: timings (\{.*\})")


def stage_order() -> list[str]:
    import yaml

    return list(yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"])


def main() -> None:
    load_before = _results.load_average()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    marks: list[tuple[str, float]] = []
    reused: set[str] = set()
    flow_seconds: dict[str, float] | None = None
    for line in sys.stdin:
        sys.stdout.write(line)
        sys.stdout.flush()
        m = RUNNING.search(line)
        if m:
            marks.append((m.group(1), time.perf_counter()))
        elif marks and REUSED.search(line):
            reused.add(marks[-1][0])
        elif TIMINGS.search(line):
            flow_seconds = json.loads(TIMINGS.search(line).group(1))
    end = time.perf_counter()
    if not marks:
        print("[stage_times] no stage ran; demo_run.json unchanged")
        return
    previous = json.loads(OUT.read_text(encoding="utf-8")) if OUT.exists() else {}
    stages = dict(previous.get("config", {}).get("stages", {}))
    partial = {}
    for (name, t0), (_, t1) in zip(marks, [*marks[1:], ("", end)]):
        if name in reused and name in stages:
            partial[name] = {"seconds": round(t1 - t0, 1), "date": now}
        else:
            stages[name] = {"seconds": round(t1 - t0, 1), "date": now}
            if name == "generate" and flow_seconds is not None:
                stages[name]["flow_seconds"] = flow_seconds
    order = [s for s in stage_order() if s in stages]
    figures = {f"{s}_s": stages[s]["seconds"] for s in order}
    figures["total_s"] = round(sum(figures.values()), 1)
    flow = stages.get("generate", {}).get("flow_seconds")
    if "latents" in stages and "train_prior" in stages and flow is not None:
        figures["generate_flow_s"] = round(flow.get("flow_s", 0.0) + flow.get("inbetween_s", 0.0), 1)
        figures["flow_prior_s"] = round(figures["latents_s"] + figures["train_prior_s"] + figures["generate_flow_s"], 1)
    import yaml

    threads = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["train"]["threads"]
    targets = {k: _results.target(figures[k], max=v) for k, v in TARGETS_S.items() if k in figures}
    _results.save("demo_run", config={"stages": {s: stages[s] for s in order}, "ran_now": [n for n, _ in marks],
                          "partial_runs": partial},
                  threads=threads, load_before=load_before,
                  repeats={s: [stages[s]["seconds"]] for s in order}, figures=figures, targets=targets, out=OUT)


if __name__ == "__main__":
    main()
