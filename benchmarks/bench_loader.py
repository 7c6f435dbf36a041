"""Training input pipeline: windows/s the trainer's DataLoader delivers, against what the model consumes.

Writes a feature cache of demo motions (the test suite's `fake_cache.make_fake_cache`: demo dances and
studio actions through the real feature code, with its splits, bad lists and stats) with sequences
of 200-600 frames, builds the trainer's own loaders (`flowmimic.training.loop.build_loaders`:
`MotionWindows` + `BalancedBatchSampler`, normalisation included) for the demo model's batches
(params.yaml `train.seq_len` x `train.batch_size`) and the full model's CPU batches (120 x 8), with
`num_workers` 0 and 2, and times whole epochs of batches (`--repeats` rounds, best kept; worker
start-up not timed: the trainer keeps its workers, `persistent_workers`). The model's rate comes from
`benchmarks/results/train.json` (bench_train.py): windows/s = steps/s x batch. The headroom is
loader windows/s / model windows/s: above 1 the model never waits on data.

Run: python benchmarks/bench_loader.py [--repeats 3] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import _results  # noqa: E402

HEADROOM_MIN = 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3, help="epochs of batches per timed round")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch
    import yaml

    from fake_cache import make_fake_cache
    from flowmimic.training.distributed import DistInfo
    from flowmimic.training.loop import build_loaders

    train_json = json.loads((_results.RESULTS / "train.json").read_text(encoding="utf-8"))
    demo_train = yaml.safe_load((_results.REPO / "params.yaml").read_text(encoding="utf-8"))["train"]
    models = {"demo": (demo_train["seq_len"], demo_train["batch_size"]),
              "full": (120, train_json["figures"]["full_batch"])}
    torch.set_num_threads(1)
    load_before = _results.load_average()
    repeats: dict[str, list[float]] = {}
    figures: dict[str, float] = {}
    targets = {}
    with tempfile.TemporaryDirectory(prefix="flowmimic-bench-loader-") as tmp:
        for model, (seq_len, batch) in models.items():
            for nw in args.workers:
                params = make_fake_cache(Path(tmp) / f"{model}-{nw}", n_train=24, n_val=2, n_test=1, frames=(200, 600),
                                         train=dict(seq_len=seq_len, batch_size=batch, num_workers=nw,
                                                    windows_per_sequence=4))
                info = DistInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
                loaders = build_loaders(params, info)
                rates = []
                for r in range(args.repeats + 1):                # round 0 starts the workers: not timed
                    n, t0 = 0, time.perf_counter()
                    for epoch in range(args.epochs if r else 1):
                        loaders.sampler.set_epoch(epoch)
                        for b in loaders.train:
                            n += b["x"].shape[0] if isinstance(b, dict) and "x" in b else batch
                    if r:
                        rates.append(round(n / (time.perf_counter() - t0), 1))
                key = f"{model}_w{nw}"
                repeats[f"{key}_windows_per_s"] = rates
                figures[f"{key}_windows_per_s"] = round(max(rates))
                del loaders
            consumed = train_json["figures"][f"{model}_windows_per_s"]
            figures[f"{model}_model_windows_per_s"] = consumed
            best0 = figures[f"{model}_w0_windows_per_s"]
            figures[f"{model}_headroom_w0"] = round(best0 / consumed, 1)
            targets[f"{model}_headroom_w0"] = _results.target(best0 / consumed, min=HEADROOM_MIN)
            rates_text = ", ".join(f"{figures[model + '_w' + str(w) + '_windows_per_s']:,} windows/s (num_workers {w})"
                                   for w in args.workers)
            print(f"{model}: loader {rates_text}; model {consumed} windows/s on CPU (train.json): headroom "
                  f"{figures[model + '_headroom_w0']}x with num_workers 0")
    _results.save("loader", config=vars(args) | {"out": None, "models": models}, threads=1, load_before=load_before,
                  repeats=repeats, figures=figures, targets=targets, out=args.out)


if __name__ == "__main__":
    main()
