"""Print README's performance tables from the result files (and the demo's quality from metrics/eval.json).

Every figure comes out as a link into the file it was read from, in the form
`tests/test_readme_figures.py` checks. After re-running a benchmark (or the pipeline), run this and
paste its output over README's tables under "## Performance".

Run: python benchmarks/readme_table.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
RESULTS = "benchmarks/results"


def _load(rel: str) -> dict[str, Any] | None:
    path = REPO / rel
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _get(doc: Any, key: str) -> Any:
    for part in key.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def linker(rel: str) -> Callable[..., str]:
    """fig(key, fmt, unit) -> `[<value formatted><unit>](rel#key)`."""
    doc = _load(rel)

    def fig(key: str, fmt: str = ",", unit: str = "") -> str:
        if doc is None:
            return f"(run the benchmark: no {rel})"
        link = f"[{format(_get(doc, key), fmt)}{unit}]({rel}#{key})"
        if key.startswith("targets."):                     # a target: say whether this run met it
            link += ": met" if _get(doc, key.rsplit(".", 1)[0])["met"] else ": **missed**"
        return link

    return fig



def main() -> None:
    fe, fk, ca, tr, pi, rd, sc, lo, dr, of = (linker(f"{RESULTS}/{n}.json") for n in (
        "features", "fk", "cache", "train", "pipeline", "read", "scale", "loader", "demo_run", "overfit"))
    ev = linker("metrics/eval.json")
    rows = [
        ("joints → 263-D features, 200 demo dances × 200 frames, one process, best (median) of 5",
         f"{fe('figures.frames_per_s_best', ',', ' frames/s')} ({fe('figures.frames_per_s_median', ',')})",
         f"≥ {fe('targets.frames_per_s_best.min', ',')}", "`features.json`"),
        ("SMPL joints by our FK vs smplx's full mesh pass, 200 × 200 frames, **procedural SMPL-format model** "
         "(SMPL's sizes, random values)",
         f"{fk('figures.fk_frames_per_s', ',')} vs {fk('figures.smplx_frames_per_s', ',', ' frames/s')} = "
         f"{fk('figures.speedup', '.1f', '×')}; max joint difference {fk('figures.max_abs_joint_diff_m', '.2e', ' m')}",
         f"≥ {fk('targets.speedup.min', '.0f', '×')}", "`fk.json`"),
        ("MVHumanNet frame read, real format ([252,454 bytes](benchmarks/results/read.json#figures.bytes_per_frame) "
         "per frame, all read from disk), one thread, best of 5: plain `pickle.load` (unsafe) / full safe load / "
         "the reader's joints-only safe load; RSS growth over 5 rounds of 400 frames",
         f"{rd('figures.plain_pickle_frames_per_s', ',')} / {rd('figures.safe_full_frames_per_s', ',')} / "
         f"{rd('figures.safe_joints_only_frames_per_s', ',', ' frames/s')} = {rd('figures.speedup_vs_plain', '.2f', '×')} "
         f"plain; RSS growth {rd('figures.rss_growth_mb', '.1f', ' MB')}",
         f"≥ {rd('targets.speedup_vs_plain.min', '.0f', '×')}", "`read.json`"),
        ("cache stage on real-format data (the demo's sequence counts, full-size MVHumanNet frames, AIST++ of real "
         "length), 1 worker, 1 thread (best of 5, interleaved with the 2-worker runs)",
         f"{ca('figures.x1_w1_seqs_per_s', '.1f', ' seqs/s')}, {ca('figures.x1_w1_feature_frames_per_s', ',', ' frames/s')} "
         f"(features), {ca('figures.x1_w1_mb_read_per_s', ',', ' MB')}/s read; peak RSS {ca('figures.x1_w1_rss_main_mb', ',', ' MB')}",
         "–", "`cache.json`"),
        ("same, 2 workers × 1 thread",
         f"{ca('figures.x1_w2_seqs_per_s', '.1f', ' seqs/s')}, {ca('figures.x1_w2_feature_frames_per_s', ',', ' frames/s')}, "
         f"{ca('figures.x1_w2_mb_read_per_s', ',', ' MB')}/s; peak RSS {ca('figures.x1_w2_rss_main_mb', ',', ' MB')} main + "
         f"{ca('figures.x1_w2_rss_workers_mb', ',', ' MB')} per worker; speed-up {ca('figures.speedup_2_workers', '.2f', '×')} "
         f"= two workers × busy share {ca('figures.busy_share_2_workers', '.3f')} / CPU cost {ca('figures.cpu_cost_2_workers', '.3f')} "
         f"({ca('figures.x2_w2_speedup', '.2f', '×')} = two × {ca('figures.x2_w2_busy_share', '.3f')} / "
         f"{ca('figures.x2_w2_cpu_cost', '.3f')} on twice the data), where a pure-CPU loop got "
         f"{ca('figures.cpu_loop_speedup_2_procs', '.2f', '×')} and a memory-bound loop "
         f"{ca('figures.memory_loop_speedup_2_procs', '.2f', '×')} from the same machine in the same run",
         f"≥ {ca('targets.speedup_2_workers.min', '.1f', '×')}; busy share ≥ "
         f"{ca('targets.busy_share_2_workers_min.min', '.2f')} at both sizes",
         "`cache.json`"),
        ("cache memory with the data doubled (`--scale 2`), 1 / 2 workers",
         f"peak RSS {ca('figures.x2_w1_rss_main_mb', ',', ' MB')} / {ca('figures.x2_w2_rss_main_mb', ',', ' MB')} + "
         f"{ca('figures.x2_w2_rss_workers_mb', ',', ' MB')}; growth {ca('figures.rss_growth_mb', ',', ' MB')}",
         f"growth ≤ {ca('targets.rss_growth_mb.max', '.0f', ' MB')}",
         "`cache.json`"),
        ("scale run: 1/1000 of MVHumanNet's sequences "
         f"({sc('figures.mvh_sequences', ',')}, {sc('figures.mvh_frame_files', ',')} frame files, "
         f"{sc('figures.mvh_gb', '.2f', ' GB')}) + {sc('figures.aist_sequences', ',')} AIST++ motions of real length "
         f"({sc('figures.aist_hours', '.1f')} h), split → cache (2 workers) → validate → stats",
         f"cache {sc('figures.cache_s', '.1f', ' s')}: {sc('figures.cache_files_per_s', ',')} files/s, "
         f"{sc('figures.cache_mb_per_s', ',', ' MB')}/s; MVHumanNet {sc('figures.mvh_frames_per_cpu_s', ',', ' frames/s')} "
         f"per CPU second; validate {sc('figures.validate_s', '.1f', ' s')}, stats {sc('figures.stats_s', '.1f', ' s')}; "
         f"peak RSS cache {sc('figures.cache_rss_main_mb', ',', ' MB')} + {sc('figures.cache_rss_worker_mb', ',', ' MB')} "
         f"per worker, validate {sc('figures.validate_rss_main_mb', ',', ' MB')}, stats {sc('figures.stats_rss_main_mb', ',', ' MB')}",
         "–", "`scale.json`"),
        ("extrapolated to the full datasets on 64 cores (MVHumanNet: 60,000 sequences at this tree's frames per "
         "sequence; AIST++: 1,408 sequences, 10.1 h)",
         f"MVHumanNet {sc('figures.full_mvh_frames_millions', '.2f')} M frames, {sc('figures.full_mvh_tb', '.2f')} TB read, "
         f"{sc('figures.full_mvh_cpu_hours', '.2f')} CPU hours (decode needs {sc('figures.full_mvh_read_gb_per_s_needed', '.1f')} GB/s "
         f"of reads to keep them busy: **IO-bound** on any slower storage); AIST++ "
         f"{sc('figures.full_aist_gb', '.2f', ' GB')}, {sc('figures.full_aist_cpu_hours', '.3f')} CPU hours (CPU-bound)",
         "–", "`scale.json`"),
        ("training input: the trainer's DataLoader, demo batches (32 × 60), num_workers 0 / 2",
         f"{lo('figures.demo_w0_windows_per_s', ',')} / {lo('figures.demo_w2_windows_per_s', ',', ' windows/s')} vs the "
         f"demo model's {lo('figures.demo_model_windows_per_s', '.1f', ' windows/s')}: headroom {lo('figures.demo_headroom_w0', '.0f', '×')}",
         f"≥ {lo('targets.demo_headroom_w0.min', '.0f', '×')}",
         "`loader.json`"),
        ("same, full-model batches (8 × 120)",
         f"{lo('figures.full_w0_windows_per_s', ',')} / {lo('figures.full_w2_windows_per_s', ',', ' windows/s')} vs "
         f"{lo('figures.full_model_windows_per_s', '.1f', ' windows/s')}: headroom {lo('figures.full_headroom_w0', '.0f', '×')}",
         f"≥ {lo('targets.full_headroom_w0.min', '.0f', '×')}",
         "`loader.json`"),
        ("training, demo model (batch 32 × 60 frames)",
         f"{tr('figures.demo_steps_per_s', 'g', ' steps/s')} = {tr('figures.demo_windows_per_s', '.1f', ' windows/s')}; "
         f"{tr('figures.demo_gflop_per_step', '.2f', ' GFLOP')}/step = {tr('figures.demo_gflop_per_s', '.1f', ' GFLOP')}/s",
         "–", "`train.json`"),
        ("training, the seed's full model (batch 8 × 120 frames on CPU)",
         f"{tr('figures.full_steps_per_s', 'g', ' steps/s')} = {tr('figures.full_windows_per_s', '.1f', ' windows/s')}; "
         f"{tr('figures.full_gflop_per_step', '.0f', ' GFLOP')}/step = {tr('figures.full_gflop_per_s', '.1f', ' GFLOP')}/s",
         "–", "`train.json`"),
        ("whole demo pipeline (`dvc repro`, every stage; the first install not included)",
         f"{pi('figures.total_s', ',', ' s')}, of which training {pi('figures.train_s', ',', ' s')}",
         f"≤ {pi('targets.total_s.max', '.0f', ' s')}", "`pipeline.json`"),
        ("the committed demo run (`bash scripts/demo.sh`, the stages that ran last; per stage in the file)",
         f"{dr('figures.total_s', ',', ' s')}, of which training {dr('figures.train_s', ',', ' s')}",
         f"≤ {dr('targets.total_s.max', '.0f', ' s')}; training ≤ {dr('targets.train_s.max', '.0f', ' s')}",
         "`demo_run.json`"),
        ("full-size sanity: the seed's full configuration overfits a few demo dances (root-aligned MPJPE of the "
         "reconstruction, posterior mean)",
         f"{of('figures.final_mpjpe_root_aligned_mm', '.2f', ' mm')} after {of('figures.steps', ',')} steps on "
         f"{of('figures.windows', 'd')} windows of {of('figures.window_frames', 'd')} frames "
         f"({of('figures.parameters', ',')} parameters, {of('figures.seconds', ',', ' s')})",
         f"< {of('targets.final_mpjpe_root_aligned_mm.max', 'g', ' mm')}", "`overfit.json`"),
    ]
    print("| what | figure | target | result file |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print("| result file | torch threads | load average (1, 5, 15-minute) before | after |")
    print("|---|---|---|---|")
    for name, f in (("features", fe), ("fk", fk), ("read", rd), ("cache", ca), ("scale", sc), ("train", tr),
                    ("loader", lo), ("pipeline", pi), ("demo_run", dr),
                    ("overfit", of)):
        doc = _load(f"{RESULTS}/{name}.json")
        threads = f("threads") if doc and doc["threads"] is not None else "torch default"
        loads = [" / ".join(f(f"{k}.{i}", ".2f") for i in range(3)) for k in ("load_before", "load_after")]
        print(f"| `{name}.json` | {threads} | {loads[0]} | {loads[1]} |")
    print()
    window = ev("settings.window_frames", "d")
    print(f"| domain (held-out test split, {window}-frame windows; 95 % interval) | MPJPE root-aligned | PA-MPJPE "
          "| MPJPE (root integrated) | ACCL (mm/frame²) | contact F1 | style accuracy |")
    print("|---|---|---|---|---|---|---|")

    def with_ci(d: str, key: str, fmt: str, unit: str = "") -> str:
        return (f"{ev(f'test.{d}.{key}', fmt, unit)} [{ev(f'test.{d}.ci95.{key}.lo', fmt)}, "
                f"{ev(f'test.{d}.ci95.{key}.hi', fmt)}]")
    for d, label in (("overall", "overall"), ("aist", "AIST++"), ("mvh", "MVHumanNet")):
        style = with_ci(d, "style_accuracy", ".3f") if d != "mvh" else "–"
        print(f"| {label} | {with_ci(d, 'mpjpe_root_aligned_mm', '.1f', ' mm')} | {with_ci(d, 'pa_mpjpe_mm', '.1f', ' mm')} "
              f"| {with_ci(d, 'mpjpe_mm', '.1f', ' mm')} | {with_ci(d, 'accl_mm_per_frame2', '.2f')} "
              f"| {with_ci(d, 'contact_f1', '.3f')} | {style} |")


if __name__ == "__main__":
    main()
