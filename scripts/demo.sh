#!/usr/bin/env bash
# The main job: set up the environment, then run the whole DVC pipeline on the built-in demo data
# (demo_data -> split -> cache -> validate -> stats -> train -> evaluate -> classifier -> latents ->
# train_prior -> generate). Extra arguments go to
# `dvc repro` (e.g. `bash scripts/demo.sh -f` to force every stage).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
start=$(date +%s)
# stage_times.py passes the output through and records each stage's wall time in
# benchmarks/results/demo_run.json (committed with each accepted run).
dvc repro "$@" 2>&1 | python scripts/stage_times.py
echo
echo "Pipeline finished in $(( $(date +%s) - start )) s."
python - <<'PY'
import json
data, ev = json.load(open("metrics/data.json")), json.load(open("metrics/eval.json"))
t, test = data["total"], ev["test"]
print(f"data:  {t['usable']} of {t['sequences']} sequences usable ({t['hours']:.2f} h); bad fraction {t['bad_fraction']:.3f}")
print(f"test split, {ev['settings']['window_frames']}-frame windows, 95 % bootstrap intervals over sequences:")

def fig(e, key, unit=""):
    ci = e.get("ci95", {}).get(key)
    return f"{e[key]}{unit}" + (f" [{ci['lo']}, {ci['hi']}]" if ci else "")

for d in ("aist", "mvh", "overall"):
    e = test[d]
    if not e.get("windows"):
        print(f"{d:8}: no test windows")
        continue
    print(f"{d:8}: MPJPE root-aligned {fig(e, 'mpjpe_root_aligned_mm', ' mm')}, raw {fig(e, 'mpjpe_mm', ' mm')}, "
          f"PA-MPJPE {fig(e, 'pa_mpjpe_mm', ' mm')}, ACCL {fig(e, 'accl_mm_per_frame2')}, contact F1 {fig(e, 'contact_f1')}"
          + (f", style accuracy {fig(e, 'style_accuracy')}" if "style_accuracy" in e else ""))
print("`dvc metrics show` lists everything (val.* is what model selection saw)")
PY
cat <<MSG

Where things are:
  metrics/data.json         data report (counts, skips and their reasons, hours)
  metrics/eval.json         evaluation on the test split (and val): MPJPE, PA-MPJPE, ACCL, contacts, style, losses + intervals
  metrics/plots/            per-genre MPJPE, style confusion matrix, GT-vs-reconstruction GIFs
  metrics/classifier.json   the independent genre classifier on real AIST++ test windows (+ confusion plot)
  metrics/generate.json     transfers, VAE-prior vs flow samples, in-betweening, label-matters check judged by it;
                            metrics/generate/ grid GIF, flow_samples.gif
  models/flow_prior.pt      the flow prior over the VAE's latents (data/latents/, dvclive/prior/)
  dvclive/train/            training curves (metrics.json, plots/)
  models/motion_vae.pt      best checkpoint (models/last.pt: resumable state)
Render every plot to HTML:  .venv/bin/dvc plots show   (then open dvc_plots/index.html)
MSG
