#!/usr/bin/env bash
# The main job: set up the environment, then run the whole DVC pipeline on the built-in demo data
# (demo_data -> split -> cache -> validate -> stats -> train -> evaluate). Extra arguments go to
# `dvc repro` (e.g. `bash scripts/demo.sh -f` to force every stage).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
start=$(date +%s)
dvc repro "$@"
echo
echo "Pipeline finished in $(( $(date +%s) - start )) s."
python - <<'PY'
import json
data, ev = json.load(open("metrics/data.json")), json.load(open("metrics/eval.json"))
t, o = data["total"], ev["overall"]
print(f"data:  {t['usable']} of {t['sequences']} sequences usable ({t['hours']:.2f} h); bad fraction {t['bad_fraction']:.3f}")
for d in ("aist", "mvh"):
    e = ev[d]
    print(f"{d:5}: MPJPE {e['mpjpe_mm']:.1f} mm (root-aligned {e['mpjpe_root_aligned_mm']:.1f}), "
          f"contact F1 {e['contact_f1']:.3f}" + (f", style accuracy {e['style_accuracy']:.3f}" if "style_accuracy" in e else ""))
print(f"all:   MPJPE {o['mpjpe_mm']:.1f} mm (root-aligned {o['mpjpe_root_aligned_mm']:.1f}); `dvc metrics show` lists everything")
PY
cat <<MSG

Where things are:
  metrics/data.json         data report (counts, skips and their reasons, hours)
  metrics/eval.json         per-domain evaluation (recon, KL, contacts, style, MPJPE, accel error)
  metrics/plots/            per-genre MPJPE, style confusion matrix, GT-vs-reconstruction GIFs
  dvclive/train/            training curves (metrics.json, plots/)
  models/motion_vae.pt      best checkpoint (models/last.pt: resumable state)
Render every plot to HTML:  .venv/bin/dvc plots show   (then open dvc_plots/index.html)
MSG
