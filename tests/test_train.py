"""The train stage end to end on the fake cache: checkpoints, dvclive, resume, restarts, errors, DDP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fake_cache import make_fake_cache, write_params
from flowmimic.training.checkpoint import load_checkpoint, load_model
from flowmimic.training.distributed import DistInfo
from flowmimic.model.losses import LossWeights
from flowmimic.model.vae import MotionVAE, VAEConfig
from flowmimic.stages import train as train_stage
from flowmimic.training.loop import NonFiniteLossError, build_loaders, lr_factor, validate


@pytest.fixture(autouse=True)
def _outside_git(tmp_path, monkeypatch):
    # dvclive inspects the git/DVC repo around the working directory; a bare tmp dir has none.
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)


def tsv(params, name: str) -> str:
    return (Path(params.train.live_dir) / "plots" / "metrics" / f"{name}.tsv").read_text()


def test_lr_schedule():
    f = [lr_factor(s, warmup_steps=4, total_steps=20, min_lr_ratio=0.1) for s in range(25)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0] and f[4] == 1.0
    assert f[12] == pytest.approx(0.1 + 0.9 * 0.5)                      # half-way through the cosine
    assert f[20] == pytest.approx(0.1) and f[24] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(f[4:], f[5:]))


def test_train_end_to_end_writes_checkpoints_and_dvclive(tmp_path):
    params = make_fake_cache(tmp_path / "run", train=dict(epochs=3, val_every_epochs=2))
    train_stage.main(params)
    last = load_checkpoint(params.train.last_path)
    model, best = load_model(params.train.model_path)
    assert isinstance(model, MotionVAE) and not model.training
    assert last["finished"] and last["epoch"] == 3 and last["step"] == 3 * 6   # 24 items / batch 4
    assert best["epoch"] in (2, 3) and best["best_value"] == last["best_value"]
    assert best["config"] == last["config"] and best["config"]["d_model"] == 16
    assert last["train_params"]["d_model"] == 16 and set(last["best_model"]) == set(last["model"])
    summary = json.loads((Path(params.train.live_dir) / "metrics.json").read_text())
    assert summary["step"] == 18
    assert set(summary["train"]) == {"recon", "contact", "kl", "kl_weight", "smooth", "style", "joints", "genre_adv",
                                     "total", "lr"}
    assert summary["val"]["epoch"] == 3 and summary["val"]["total"] > 0
    assert summary["val"]["mpjpe_mm"] >= summary["val"]["mpjpe_root_aligned_mm"] * 0.2 > 0   # joint errors logged
    assert len(tsv(params, "train/total").splitlines()) == 1 + 18            # every step (log_every 1)
    assert [r.split("\t")[0] for r in tsv(params, "val/total").splitlines()] == ["step", "12", "18"]
    assert (Path(params.train.live_dir) / "params.yaml").exists()
    assert not (tmp_path / "dvc.yaml").exists() and not list(tmp_path.glob("run/**/*.tmp"))


class Killed(Exception):
    pass


def test_killed_run_resumes_to_identical_results(tmp_path, monkeypatch):
    overrides = dict(epochs=4, val_every_epochs=2)
    a = make_fake_cache(tmp_path / "a", train=overrides)
    train_stage.main(a)

    b = make_fake_cache(tmp_path / "b", train=overrides)
    real_epoch, calls = train_stage.train_epoch, []

    def dying_epoch(*args, **kw):
        calls.append(1)
        if len(calls) == 4:                       # killed during epoch 4; last checkpoint after epoch 2
            raise Killed
        return real_epoch(*args, **kw)

    monkeypatch.setattr(train_stage, "train_epoch", dying_epoch)
    with pytest.raises(Killed):
        train_stage.main(b)
    assert load_checkpoint(b.train.last_path)["epoch"] == 2
    Path(b.train.model_path).unlink()             # DVC removes non-persistent outs before re-running
    monkeypatch.setattr(train_stage, "train_epoch", real_epoch)
    train_stage.main(b)

    ca, cb = load_checkpoint(a.train.last_path), load_checkpoint(b.train.last_path)
    assert ca["step"] == cb["step"] and ca["best_value"] == cb["best_value"]
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    ba, bb = load_checkpoint(a.train.model_path), load_checkpoint(b.train.model_path)
    for k in ba["model"]:
        assert torch.equal(ba["model"][k], bb["model"][k]), k
    # dvclive: the rows logged after the checkpoint by the killed run were dropped, not duplicated
    assert tsv(a, "train/total") == tsv(b, "train/total")
    assert tsv(a, "val/total") == tsv(b, "val/total")


def test_finished_run_returns_and_param_change_restarts(tmp_path, monkeypatch):
    params = make_fake_cache(tmp_path / "run", train=dict(epochs=1))
    train_stage.main(params)
    best_before = load_checkpoint(params.train.model_path)["model"]
    Path(params.train.model_path).unlink()
    monkeypatch.setattr(train_stage, "train_epoch", lambda *a, **k: pytest.fail("must not train again"))
    train_stage.main(params)                                   # finished: only restores the best model
    restored = load_checkpoint(params.train.model_path)
    assert all(torch.equal(best_before[k], restored["model"][k]) for k in best_before)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)

    changed = make_fake_cache(tmp_path / "run", train=dict(epochs=1, lr=1e-3))   # other params: fresh
    train_stage.main(changed)
    last = load_checkpoint(changed.train.last_path)
    assert last["train_fingerprint"] == changed.train.fingerprint() != params.train.fingerprint()
    assert last["step"] == 6 and len(tsv(changed, "train/total").splitlines()) == 1 + 6   # history restarted


def test_non_finite_loss_names_step_and_part(tmp_path):
    params = make_fake_cache(tmp_path / "run", train=dict(epochs=1))
    with np.load(params.stats.path) as f:
        mean, std = f["mean"].copy(), f["std"].copy()
    std[10] = 1e-38                                            # a tiny std: features blow up to inf
    np.savez(params.stats.path, mean=mean, std=std)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 0: .*recon=(inf|nan)"):
        train_stage.main(params)
    assert not Path(params.train.model_path).exists()


@pytest.mark.slow
def test_two_process_ddp_gloo(tmp_path):
    # batch 1: the validation mean is then independent of how windows are shared between ranks,
    # so the all-reduced value must equal a one-process evaluation of the same weights.
    params = make_fake_cache(tmp_path / "run", train=dict(epochs=2, batch_size=1, nproc_per_node=2))
    path = write_params(params, tmp_path / "params.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "flowmimic", "train", "--params", str(path)],   # launches torchrun
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 2 rank(s)" in proc.stderr
    last = load_checkpoint(params.train.last_path)
    assert last["finished"] and last["step"] == 2 * 12             # 24 items over 2 ranks, batch 1
    summary = json.loads((Path(params.train.live_dir) / "metrics.json").read_text())

    model = MotionVAE(VAEConfig.from_dict(last["config"]))
    model.load_state_dict(last["model"])
    info = DistInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
    loaders = build_loaders(params, info)
    single = validate(model, loaders.val, LossWeights.from_train_params(params.train), info.device,
                      loaders.normalizer.denormalize)
    for k in ("recon", "kl", "total"):
        assert summary["val"][k] == pytest.approx(single[k], rel=1e-5), k


def test_cuda_without_gpu_is_one_line_config_error_before_work(tmp_path, monkeypatch, caplog):
    from flowmimic.cli import main as cli_main

    params = make_fake_cache(tmp_path / "run", train=dict(device="cuda"))
    path = write_params(params, tmp_path / "params.yaml")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli_main(["train", "--params", str(path)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [f"{path}: train.device: 'cuda' but no CUDA device is available (use 'auto' or 'cpu')"]
    assert not Path(params.train.last_path).parent.exists() and not Path(params.train.live_dir).exists()
    # the same params file is fine for a stage that uses no device
    from flowmimic.params import load_params
    assert load_params(path).train.device == "cuda"


def test_seq_len_longer_than_every_sequence_warns_with_numbers(tmp_path, caplog):
    params = make_fake_cache(tmp_path / "run", frames=(9, 30), train=dict(epochs=1, seq_len=40))
    longest = max(s["frames"] for s in json.loads(Path(params.cache.dir, "index.json").read_text())["sequences"])
    with caplog.at_level("WARNING"):
        train_stage.main(params)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "seq_len" in r.getMessage()]
    assert len(warned) == 1 and f"train.seq_len (40) exceeds every cached sequence (longest {longest} frames" in warned[0]
    caplog.clear()
    train_stage.main(make_fake_cache(tmp_path / "ok", frames=(9, 30), train=dict(epochs=1, seq_len=8)))
    assert not [r for r in caplog.records if "seq_len" in r.getMessage()]


def test_train_threads_param_sets_torch_threads(tmp_path):
    torch.set_num_threads(1)
    train_stage.main(make_fake_cache(tmp_path / "run", train=dict(epochs=1, threads=2)))
    assert torch.get_num_threads() == 2


def test_two_fresh_runs_write_byte_identical_checkpoints(tmp_path):
    # the same data rebuilt from scratch (new mtimes) and trained from scratch again, same folder
    outputs = []
    for run in range(2):
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
        params = make_fake_cache(tmp_path / "run", train=dict(epochs=2, val_every_epochs=1))
        for f in Path(params.cache.dir).rglob("*.npy"):
            os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + run * 10**10))
        train_stage.main(params)
        outputs.append({p: Path(p).read_bytes() for p in (params.train.last_path, params.train.model_path)})
    assert outputs[0].keys() == outputs[1].keys()
    for path in outputs[0]:
        assert outputs[0][path] == outputs[1][path], path
