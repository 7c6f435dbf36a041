"""The committed benchmark results describe the project as it is: the demo models of params.yaml and
every stage of dvc.yaml.

`test_readme_figures.py` checks that README quotes each result file faithfully; this checks that the
file measured what the project now runs. A figure timed on an older model size or pipeline is stale
even when quoted faithfully: re-run its benchmark (the command is in the file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flowmimic.model.prior import FlowPrior, PriorConfig
from flowmimic.model.vae import MotionVAE, VAEConfig
from flowmimic.params import load_params

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params(REPO / "params.yaml")


def _result(name: str) -> dict:
    return json.loads((REPO / "benchmarks/results" / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def vae_parameters() -> int:
    return MotionVAE(VAEConfig.from_train_params(PARAMS.train)).num_params()


def test_the_training_benchmarks_timed_the_demo_model_and_batches_of_params_yaml(vae_parameters: int) -> None:
    f = _result("train")["figures"]
    assert (f["demo_params"], f["demo_batch"], f["demo_seq_len"]) == (
        vae_parameters, PARAMS.train.batch_size, PARAMS.train.seq_len)
    assert _result("loader")["config"]["models"]["demo"] == [PARAMS.train.seq_len, PARAMS.train.batch_size]


def test_the_generation_benchmarks_ran_the_models_of_params_yaml(vae_parameters: int) -> None:
    assert _result("generate")["config"]["model_params"] == vae_parameters
    prior = _result("prior")["config"]
    assert prior["vae_params"] == vae_parameters
    assert prior["prior_params"] == FlowPrior(PriorConfig.from_params(PARAMS.prior, PARAMS.train.d_z)).num_params()


def test_the_pipeline_timings_cover_every_stage_of_dvc_yaml() -> None:
    stages = list(yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"])
    assert _result("pipeline")["config"]["stages"] == stages
    assert sorted(_result("demo_run")["config"]["stages"]) == sorted(stages)
