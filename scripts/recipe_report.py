"""Summarise the recipe sweep (DVC experiments) into docs/: a trimmed table, seed statistics, and the
quality-vs-compute curves (validation root-aligned MPJPE against training steps).

The experiments are git refs made by `dvc exp run --queue` (see docs/recipe_sweep.md for the exact
commands); this script reads them through `dvc exp show --json` and `git show <ref>:<dvclive file>`,
so it needs no files outside the repository. Scored on the **val** split (model selection); the
held-out test split is reported only for the committed demo run (metrics/eval.json).

Run: python scripts/recipe_report.py --baseline REV [--chosen NAME] [--larger NAME]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
CURVE = "dvclive/train/plots/metrics/val/mpjpe_root_aligned_mm.tsv"
EXP_SHOW_KEEP = (r"Experiment|train\.(d_model|n_layers|dropout|d_z|w_joints|epochs|seed)$"
                 r"|^val\.overall\.(mpjpe_mm|mpjpe_root_aligned_mm|pa_mpjpe_mm)$")
PARAMS = ("d_model", "n_layers", "dropout", "d_z", "lr", "batch_size", "epochs", "w_joints", "kl_weight",
          "seed", "seq_len")


def run(*cmd: str) -> str:
    return subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout


def experiments(baseline: str) -> list[dict]:
    """Name, ref, train params and val/test figures of every experiment on `baseline`."""
    out = []
    for rev in json.loads(run("dvc", "exp", "show", "--json", "--rev", baseline)):
        for exp in rev.get("experiments") or []:
            for r in exp.get("revs") or []:
                data = r.get("data") or {}
                metrics = (data.get("metrics") or {}).get("metrics/eval.json", {}).get("data", {})
                params = (data.get("params") or {}).get("params.yaml", {}).get("data", {})
                if not metrics or not r.get("name"):
                    continue
                out.append({"name": r["name"], "rev": r["rev"], "train": params.get("train", {}),
                            "val": metrics["val"]["overall"], "test": metrics["test"]["overall"],
                            "val_aist": metrics["val"]["aist"], "val_mvh": metrics["val"]["mvh"]})
    return sorted(out, key=lambda e: e["val"]["mpjpe_root_aligned_mm"])


def curve(rev: str) -> list[tuple[int, float]]:
    text = run("git", "show", f"{rev}:{CURVE}")
    return [(int(row["step"]), float(row["mpjpe_root_aligned_mm"])) for row in csv.DictReader(io.StringIO(text), delimiter="\t")]


def steps(e: dict) -> int:
    return curve(e["rev"])[-1][0]


def table(exps: list[dict]) -> str:
    head = ["experiment", *(f"train.{p}" for p in PARAMS), "steps", "val MPJPE root-aligned (mm)", "val MPJPE (mm)",
            "val PA-MPJPE (mm)", "val AIST++ / MVH root-aligned (mm)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in exps:
        v = e["val"]
        row = [e["name"], *(str(e["train"].get(p, "")) for p in PARAMS), str(steps(e)),
               f"{v['mpjpe_root_aligned_mm']:.1f}", f"{v['mpjpe_mm']:.1f}", f"{v['pa_mpjpe_mm']:.1f}",
               f"{e['val_aist']['mpjpe_root_aligned_mm']:.1f} / {e['val_mvh']['mpjpe_root_aligned_mm']:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def seed_rows(exps: list[dict]) -> str:
    """Mean ± sd over the experiments whose names differ only by a `-s<seed>` suffix (seed 0: no suffix)."""
    groups: dict[str, list[dict]] = {}
    for e in exps:
        base = e["name"].rsplit("-s", 1)[0] if e["name"].rsplit("-s", 1)[-1].isdigit() else e["name"]
        groups.setdefault(base, []).append(e)
    lines = ["| configuration | seeds | val MPJPE root-aligned (mm) | val MPJPE (mm) | val PA-MPJPE (mm) |", "|---|---|---|---|---|"]
    for base, group in groups.items():
        if len(group) < 3:
            continue
        def ms(key: str) -> str:
            xs = [g["val"][key] for g in group]
            return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs):.1f}"
        seeds = ", ".join(str(g["train"].get("seed")) for g in group)
        lines.append(f"| {base} | {seeds} | {ms('mpjpe_root_aligned_mm')} | {ms('mpjpe_mm')} | {ms('pa_mpjpe_mm')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="the commit the sweep's experiments were queued on")
    ap.add_argument("--chosen", required=True, help="experiment of the chosen demo recipe")
    ap.add_argument("--larger", required=True, help="experiment of the larger configuration for the compute plot")
    args = ap.parse_args()
    exps = experiments(args.baseline)
    by_name = {e["name"]: e for e in exps}
    curves = DOCS / "quality_vs_compute"
    curves.mkdir(exist_ok=True)
    for label, name in (("chosen", args.chosen), ("larger", args.larger)):
        rows = [{"step": s, "mpjpe_root_aligned_mm": round(m, 2), "experiment": name}
                for s, m in curve(by_name[name]["rev"])]
        (curves / f"{label}.json").write_text(json.dumps(rows, indent=1) + "\n")
    (DOCS / "recipe_sweep_table.md").write_text(
        "<!-- written by scripts/recipe_report.py; see docs/recipe_sweep.md -->\n\n"
        "### Every configuration (one seed), sorted by val root-aligned MPJPE\n\n" + table(exps)
        + "\n\n### The best configurations over 3 seeds (mean ± sd)\n\n" + seed_rows(exps)
        + "\n\n### `dvc exp show --md`, trimmed (workspace row: the committed params before the run)\n\n"
        + run("dvc", "exp", "show", "--rev", args.baseline, "--md", "--drop", ".*", "--keep", EXP_SHOW_KEEP) + "\n")
    print(f"wrote {DOCS / 'recipe_sweep_table.md'} and {curves}/ ({len(exps)} experiments)")


if __name__ == "__main__":
    main()
