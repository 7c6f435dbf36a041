"""scripts/stage_times.py: each stage's wall time from `dvc repro`'s output; resumed runs do not overwrite."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("stage_times", REPO / "scripts" / "stage_times.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(mod, monkeypatch, lines: list[str], clock: list[float]) -> dict:
    ticks = iter(clock)
    monkeypatch.setattr(mod.time, "perf_counter", lambda: next(ticks))
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(line + "\n" for line in lines)))
    mod.main()
    return json.loads(mod.OUT.read_text())


def test_stage_times_records_scratch_runs_and_keeps_them_over_resumed_ones(tmp_path, monkeypatch, capsys):
    mod = _load()
    monkeypatch.setattr(mod, "OUT", tmp_path / "demo_run.json")
    first = _run(mod, monkeypatch, ["Running stage 'cache':", "cache: 10 sequences, 0 up to date, 10 to process",
                                    "Running stage 'train':", "epoch 1"], [0.0, 4.0, 104.0])
    assert first["figures"]["cache_s"] == 4.0 and first["figures"]["train_s"] == 100.0
    assert first["figures"]["total_s"] == 104.0 and first["config"]["partial_runs"] == {}
    # a re-run where train found its finished checkpoint: 2 s, not a from-scratch time
    second = _run(mod, monkeypatch, ["Running stage 'train':", "training already finished (models/last.pt)"],
                  [200.0, 202.0])
    assert second["figures"]["train_s"] == 100.0 and second["config"]["partial_runs"]["train"]["seconds"] == 2.0
    third = _run(mod, monkeypatch, ["Running stage 'cache':", "cache: 10 sequences, 7 up to date, 3 to process"],
                 [300.0, 301.5])
    assert third["figures"]["cache_s"] == 4.0 and third["config"]["partial_runs"]["cache"]["seconds"] == 1.5
    # a from-scratch re-run replaces the time
    fourth = _run(mod, monkeypatch, ["Running stage 'train':", "epoch 1"], [400.0, 490.0])
    assert fourth["figures"]["train_s"] == 90.0 and "train" not in fourth["config"]["partial_runs"]
    assert fourth["figures"]["total_s"] == 94.0


def test_flow_prior_share_comes_from_the_generate_log(tmp_path, monkeypatch):
    mod = _load()
    monkeypatch.setattr(mod, "OUT", tmp_path / "demo_run.json")
    lines = ["Running stage 'latents':", "Running stage 'train_prior':", "Running stage 'generate':",
             'generate: timings {"vae_prior_s": 1.0, "flow_s": 8.0, "inbetween_s": 6.5}']
    out = _run(mod, monkeypatch, lines, [0.0, 2.0, 102.0, 162.0])
    assert out["figures"]["generate_flow_s"] == 14.5
    assert out["figures"]["flow_prior_s"] == 2.0 + 100.0 + 14.5
    assert out["targets"]["flow_prior_s"]["met"]
    # a later run without generate keeps the last generate's flow seconds
    again = _run(mod, monkeypatch, ["Running stage 'train_prior':"], [200.0, 300.0])
    assert again["figures"]["flow_prior_s"] == 2.0 + 100.0 + 14.5
