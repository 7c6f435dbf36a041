"""Write docs/transfer_strength.md: the reconstruction-vs-transfer trade-off of `generate.transfer_strength`.

The rows are DVC experiments on one baseline commit, each `dvc exp run -S generate.transfer_strength=S`
(only the generate stage re-runs: the VAE, the classifier and the prior are the baseline's), plus the
baseline itself. Figures come from each experiment's `metrics/generate.json` through
`dvc exp show --json`, so the table is what the experiment refs hold. Judged on the TEST split (the
strength was chosen on val with a smaller prior; see README).

Run: python scripts/transfer_report.py --baseline REV
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "transfer_strength.md"
COLUMNS = (
    ("transfers as target", ("transfer", "classified_as_target", "rate")),
    ("× real", ("transfer", "relative_to_real")),
    ("label followed", ("label_matters", "followed", "rate")),
    ("kept original genre", ("label_matters", "kept_original")),
    ("root trajectory error (m)", ("transfer", "root_trajectory_error_m", "mean")),
    ("foot-contact agreement", ("transfer", "foot_contact_agreement", "mean")),
    ("foot skating", ("transfer", "foot_skating", "rate")),
    ("FID_k transfers", ("transfer", "fid_k")),
)


def run(*cmd: str) -> str:
    return subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout


def _get(d: dict, path: tuple[str, ...]):
    for k in path:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def rows(baseline: str) -> list[dict]:
    """(name, generate params, generate metrics) of the baseline and of every experiment on it."""
    out = []
    for rev in json.loads(run("dvc", "exp", "show", "--json", "--rev", baseline)):
        entries = [rev] + [r for exp in rev.get("experiments") or [] for r in exp.get("revs") or []]
        for r in entries:
            data = r.get("data") or {}
            metrics = (data.get("metrics") or {}).get("metrics/generate.json", {}).get("data", {})
            params = (data.get("params") or {}).get("params.yaml", {}).get("data", {})
            if metrics:
                out.append({"name": r.get("name") or f"baseline {r['rev'][:7]}", "generate": params.get("generate", {}),
                            "metrics": metrics})
    return sorted(out, key=lambda e: e["generate"].get("transfer_strength", 0.0))


def table(entries: list[dict]) -> str:
    head = ["experiment", "transfer_strength", "transfer_guidance", *(c for c, _ in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        cells = [e["name"], str(e["generate"].get("transfer_strength")), str(e["generate"].get("transfer_guidance"))]
        for _, path in COLUMNS:
            v = _get(e["metrics"], path)
            cells.append("" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="the commit the experiments were queued on")
    args = ap.parse_args()
    base = run("git", "rev-parse", args.baseline).strip()
    entries = rows(base)
    real = _get(entries[0]["metrics"], ("real", "classifier_accuracy", "rate")) if entries else None
    text = f"""# Transfer strength: reconstruction vs transfer (DVC experiments)

`generate.transfer_strength` is the SDEdit noise level at which transfers re-generate the source's
latents through the flow prior (README, "Transfer through the flow prior"): 0 keeps the source's
latents and swaps only the decoder's label; 1 keeps nothing of the source. Every row but the
baseline is one experiment on commit `{base[:7]}`, made with

```bash
dvc exp run --queue -S generate.transfer_strength=S     # S = 0, 0.7, 1.0
dvc queue start -j 1                                      # only `generate` re-runs
python scripts/transfer_report.py --baseline {base[:7]}   # this file
```

Test split; the classifier's accuracy on real test windows is {real}; targets: transfers as target
≥ 0.8 × real, label followed ≥ 0.7, root trajectory error ≤ 0.10 m. The experiment refs are local
(`dvc exp show`; `dvc exp push` shares them).

{table(entries)}
"""
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(entries)} rows)")


if __name__ == "__main__":
    main()
