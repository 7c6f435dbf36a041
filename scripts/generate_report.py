"""Tabulate DVC experiments over one `generate` knob into docs/: transfer strength, transfer guidance,
flow guidance or flow temperature.

The rows are DVC experiments on one baseline commit, each `dvc exp run -S generate.<knob>=V` (only
the generate stage re-runs: the VAE, the classifier and the prior are the baseline's), plus the
baseline itself; experiments that vary another knob are left out. Figures come from each
experiment's `metrics/generate.json` through `dvc exp show --json`, so a table is what the
experiment refs hold. Judged on the TEST split, where the generate stage judges.

Run: python scripts/generate_report.py --baseline REV --knob transfer_strength|transfer_guidance|guidance|temperature
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
TRANSFER_COLUMNS = (
    ("transfers as target", ("transfer", "classified_as_target", "rate")),
    ("× real", ("transfer", "relative_to_real")),
    ("label followed", ("label_matters", "followed", "rate")),
    ("kept original genre", ("label_matters", "kept_original")),
    ("root trajectory error (m)", ("transfer", "root_trajectory_error_m", "mean")),
    ("foot-contact agreement", ("transfer", "foot_contact_agreement", "mean")),
    ("foot skating", ("transfer", "foot_skating", "rate")),
    ("FID_k transfers", ("transfer", "fid_k")),
)
FLOW_COLUMNS = (
    ("flow FID_k", ("flow", "fid_k")),
    ("× floor (≤ 3)", ("comparison", "flow_fid_k_over_floor")),
    ("genre accuracy × real (≥ 0.9)", ("comparison", "flow_accuracy_relative_to_real")),
    ("Div_k × real (0.75-1.25)", ("comparison", "flow_div_k_relative_to_real")),
    ("nearest-train distance × real (≥ 1)", ("flow", "memorisation", "ratio_to_real")),
    ("… over all continuous channels", ("flow", "memorisation", "all_continuous", "ratio_to_real")),
    ("foot skating", ("flow", "foot_skating", "rate")),
    ("acceleration (m/s²)", ("flow", "acceleration_mps2", "mean")),
    ("FID_k × VAE prior's (≤ 0.5)", ("comparison", "flow_fid_k_over_vae_prior")),
)
KNOBS = {
    "transfer_strength": ("transfer_strength.md", "Transfer strength: reconstruction vs transfer", TRANSFER_COLUMNS,
                          "the SDEdit noise level at which transfers re-generate the source's latents through the "
                          "flow prior (README, \"Transfer through the flow prior\"): 0 keeps the source's latents and "
                          "swaps only the decoder's label; 1 keeps nothing of the source. Targets: transfers as "
                          "target ≥ 0.8 × real, label followed ≥ 0.7, root trajectory error ≤ 0.10 m."),
    "transfer_guidance": ("transfer_guidance.md", "Transfer guidance: how hard transfers are pushed to the target",
                          TRANSFER_COLUMNS,
                          "the flow prior's classifier-free guidance towards the target genre while transfers "
                          "re-generate the source's latents (README, \"Transfer through the flow prior\"): more "
                          "follows the target more and the source less. Targets: transfers as target ≥ 0.8 × real, "
                          "label followed ≥ 0.7, root trajectory error ≤ 0.10 m."),
    "guidance": ("flow_guidance.md", "Flow guidance: quality vs diversity of flow samples", FLOW_COLUMNS,
                 "the flow prior's classifier-free guidance when it samples (README, \"The flow prior\"): "
                 "1 is the plain conditional velocity; more pushes samples towards their genre, and away from "
                 "the data's spread. Targets in the column names."),
    "temperature": ("flow_temperature.md", "Flow temperature: how far samples stray from the training windows",
                    FLOW_COLUMNS,
                    "the scale T of the flow samples' starting noise, x0 ~ N(0, T² I) (README, \"The flow prior\"; "
                    "the \"temperature\" of normalising flows, Kingma & Dhariwal 2018, and of Matcha-TTS, Mehta et "
                    "al. 2024): 1 is the noise the prior was trained from; above 1 the ODE starts further out and "
                    "samples spread wider, away from the training windows, at some cost in FID. Targets in the "
                    "column names."),
}


def run(*cmd: str) -> str:
    return subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout


def _get(d: dict, path: tuple[str, ...]):
    for k in path:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def rows(baseline: str, knob: str) -> list[dict]:
    """(name, generate params, generate metrics) of the baseline and of every experiment on it."""
    out = []
    for rev in json.loads(run("dvc", "exp", "show", "--json", "--rev", baseline)):
        if rev.get("rev") == "workspace":
            continue
        entries = [rev] + [r for exp in rev.get("experiments") or [] for r in exp.get("revs") or []]
        for r in entries:
            data = r.get("data") or {}
            metrics = (data.get("metrics") or {}).get("metrics/generate.json", {}).get("data", {})
            params = (data.get("params") or {}).get("params.yaml", {}).get("data", {})
            if metrics:
                name = f"baseline {r['rev'][:7]}" if r is rev else r.get("name") or r["rev"][:7]
                out.append({"name": name, "generate": params.get("generate", {}), "metrics": metrics})
    if not out:
        return out
    # only the experiments over `knob`: the others on this commit vary other generate knobs
    base = out[0]["generate"]
    same = [e for e in out if all(e["generate"].get(k) == v for k, v in base.items() if k != knob)]
    return sorted(same, key=lambda e: e["generate"].get(knob, 0.0))


def table(entries: list[dict], knob: str, columns: tuple) -> str:
    head = ["experiment", f"generate.{knob}", *(c for c, _ in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        cells = [e["name"], str(e["generate"].get(knob))]
        for _, path in columns:
            v = _get(e["metrics"], path)
            cells.append("" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="the commit the experiments were queued on")
    ap.add_argument("--knob", choices=sorted(KNOBS), required=True)
    args = ap.parse_args()
    base = run("git", "rev-parse", args.baseline).strip()
    name, title, columns, what = KNOBS[args.knob]
    entries = rows(base, args.knob)
    real = _get(entries[0]["metrics"], ("real", "classifier_accuracy", "rate")) if entries else None
    values = ", ".join(str(e["generate"].get(args.knob)) for e in entries if not e["name"].startswith("baseline "))
    text = f"""# {title} (DVC experiments)

`generate.{args.knob}` is {what}

Every row but the baseline is one experiment on commit `{base[:7]}`, made with

```bash
dvc exp run --queue -S generate.{args.knob}=V       # V = {values}
dvc queue start -j 1                                  # only `generate` re-runs
python scripts/generate_report.py --baseline {base[:7]} --knob {args.knob}   # this file
```

Test split (the classifier's accuracy on real test windows: {real}). The experiment refs are local
(`dvc exp show`; `dvc exp push` shares them); the value committed now is in params.yaml.

{table(entries, args.knob, columns)}
"""
    out = DOCS / name
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(entries)} rows)")


if __name__ == "__main__":
    main()
