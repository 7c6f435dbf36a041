"""End to end through DVC in a temporary copy of the repo, on tiny params (slow: ~1-2 minutes).

`dvc repro` runs every stage; a second repro has nothing to do; two clones run from scratch write
identical `dvc.lock` files; a features / stats param change
re-runs exactly the stages that depend on it; `dvc exp run -S train.d_z=...` trains a variant and
`dvc metrics diff` reports the change; a local DVC remote round-trips the data and model.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
ALL_STAGES = ["demo_data", "split", "cache", "validate", "stats", "train", "evaluate", "classifier", "latents",
              "train_prior", "generate"]
TINY = {
    "demo": {"aist_dancers": 3, "aist_val_dancers": 1, "aist_test_dancers": 1, "aist_sequences": 1,
             "aist_seconds": [3, 4], "mvh_performers": 8, "mvh_outfits": 1, "mvh_seconds": [4, 5]},
    "split": {"mvh_val_fraction": 0.25, "mvh_test_fraction": 0.25},
    "cache": {"workers": 2, "max_skip_fraction": 0.4},
    "validate": {"max_bad_fraction": 0.4},
    "train": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_z": 8, "seq_len": 16, "batch_size": 8, "epochs": 2,
              "windows_per_sequence": 1, "warmup_steps": 2, "kl_warmup_steps": 4, "val_every_epochs": 1},
    "evaluate": {"gif_frames": 4, "window_frames": 32, "bootstrap": 100},
    "classifier": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 32, "windows_per_sequence": 2, "epochs": 2},
    "latents": {"threads": 1},
    "prior": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 32, "batch_size": 8, "epochs": 2,
              "windows_per_sequence": 1, "warmup_steps": 2, "val_every_epochs": 1, "threads": 1},
    "generate": {"samples_per_genre": 2, "label_windows_per_genre": 1, "bootstrap": 20, "gif_frames": 4,
                 "mvh_samples": 4, "steps": 2, "fid_steps": [2], "inbetween_frames": 8, "context_frames": 8},
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t",
               DVC_NO_ANALYTICS="1", FLOWMIMIC_LOG="WARNING")
    return env


def run(cmd: str, cwd: Path) -> str:
    res = subprocess.run(cmd, shell=True, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"`{cmd}` failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([a-z_]+)'", output)


def set_params(repo: Path, changes: dict) -> None:
    path = repo / "params.yaml"
    raw = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        raw.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def fresh_copy(dst: Path) -> Path:
    """The repository's tracked and unignored files, minus generated data, with TINY params, committed."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for rel in files:
        src = REPO / rel
        if src.is_file() and not rel.startswith(("data/", "models/", "dvclive/", "metrics/")):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    (dst / "dvc.lock").unlink(missing_ok=True)
    set_params(dst, TINY)
    run("git init -q && git add -A && git commit -qm init", dst)
    return dst


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return fresh_copy(tmp_path_factory.mktemp("e2e") / "repo")


def test_two_runs_from_scratch_give_identical_dvc_lock(tmp_path):
    # Same machine, same params (train.threads included): every stage's outputs hash the same,
    # so a second from-scratch `dvc repro` (another clone) reproduces the committed dvc.lock.
    locks = []
    for name in ("a", "b"):
        clone = fresh_copy(tmp_path / name)
        run("dvc repro", clone)
        locks.append(yaml.safe_load((clone / "dvc.lock").read_text()))
    outs = [{stage: {o["path"]: o.get("md5") for o in body.get("outs", [])} for stage, body in lock["stages"].items()}
            for lock in locks]
    assert set(outs[0]) == set(ALL_STAGES)
    for stage in ALL_STAGES:
        assert outs[0][stage] == outs[1][stage], stage
    texts = [yaml.safe_dump(lock, sort_keys=True).splitlines() for lock in locks]
    assert texts[0] == texts[1], "\n".join(difflib.unified_diff(texts[0], texts[1], lineterm="", n=8))


def test_repro_then_nothing_to_do(repo):
    out = run("dvc repro", repo)
    assert sorted(stages_run(out)) == sorted(ALL_STAGES)
    for f in ("metrics/data.json", "metrics/eval.json", "dvclive/train/metrics.json", "models/motion_vae.pt",
              "models/flow_prior.pt", "dvclive/prior/metrics.json", "data/latents/index.json",
              "metrics/generate/flow_samples.gif",
              "metrics/classifier.json", "metrics/generate.json", "metrics/generate/transfer_grid.gif",
              "metrics/transfer_grid.npz", "models/genre_classifier.pt",
              "metrics/plots/per_genre_mpjpe.json", "metrics/plots/recon_mvh.gif", "data/stats/mean_std_263_train.npz"):
        assert (repo / f).is_file(), f
    data = json.loads((repo / "metrics/data.json").read_text())
    assert data["total"]["sequences"] > 0 and data["total"]["usable"] < data["total"]["sequences"]  # injected bad data counted
    assert stages_run(run("dvc repro", repo)) == []
    assert "up to date" in run("dvc status", repo)
    run("git add -A && git commit -qm 'demo run'", repo)
    # Recomputing the cache from raw files with new mtimes gives the same output hash, so the
    # stages downstream have nothing to do (the resume manifest is not part of the hash).
    for f in (repo / "data/demo").rglob("*.pkl"):
        os.utime(f, (f.stat().st_atime + 10, f.stat().st_mtime + 10))
    assert stages_run(run("dvc repro -f -s cache", repo)) == ["cache"]
    assert stages_run(run("dvc repro", repo)) == []
    assert run("git status --porcelain dvc.lock", repo).strip() == ""


def test_param_changes_rerun_exactly_the_dependent_stages(repo):
    set_params(repo, {"stats": {"group_std": True}})
    assert sorted(stages_run(run("dvc repro", repo))) == ["evaluate", "generate", "latents", "stats", "train",
                                                         "train_prior"]
    set_params(repo, {"generate": {"guidance": 1.0}})          # the flow's guidance: sampling only, no retraining
    assert stages_run(run("dvc repro", repo)) == ["generate"]
    set_params(repo, {"prior": {"epochs": 3}})
    assert stages_run(run("dvc repro", repo)) == ["train_prior", "generate"]
    set_params(repo, {"features": {"feet_threshold": 0.003}})
    assert sorted(stages_run(run("dvc repro", repo))) == sorted(["cache", "validate", "stats", "train", "evaluate",
                                                                 "classifier", "latents", "train_prior", "generate"])
    run("git add -A && git commit -qm 'param changes'", repo)


def test_flow_guidance_experiment_compares_generations_without_retraining(repo):
    out = run("dvc exp run -S generate.guidance=3.0", repo)
    assert stages_run(out) == ["generate"]                    # the prior is not retrained
    diff = json.loads(run("dvc metrics diff --json", repo).strip().splitlines()[-1])
    assert any(k.startswith("flow.") for k in diff["metrics/generate.json"])
    assert "settings.guidance" in diff["metrics/generate.json"]


def test_experiment_and_metrics_diff(repo):
    run("dvc exp run -S train.d_z=4", repo)
    diff = json.loads(run("dvc metrics diff --json", repo).strip().splitlines()[-1])
    assert "metrics/eval.json" in diff and "test.overall.mpjpe_root_aligned_mm" in diff["metrics/eval.json"]
    shown = run("dvc exp show --no-pager --csv", repo)
    assert "train.d_z" in shown.splitlines()[0]


def test_local_remote_round_trip(repo, tmp_path):
    run(f"dvc remote add -d local {tmp_path / 'remote'} && dvc push -q", repo)
    run("git add -A && git commit -qm 'remote'", repo)
    clone = tmp_path / "clone"
    run(f"git clone -q {repo} {clone}", tmp_path)
    run("dvc pull -q", clone)
    assert (clone / "models/motion_vae.pt").is_file()
    assert "up to date" in run("dvc status", clone)
