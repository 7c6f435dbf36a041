"""A tiny but valid feature cache for tests (reusable by any test that needs training data).

`make_fake_cache(root)` writes, under `root`, exactly what the pipeline's stages would:

    cache/index.json, cache/{aist,mvh}/<id>.npy   (frames, 263) float32 features of demo motions
                                                   (`flowmimic.demo.clips`: AIST++ dances of the row's
                                                   genre, MVHumanNet studio actions)
    splits/{aist,mvh}_{train,val,test}.txt
    validate/bad_{aist,mvh}.txt                    one bad training sequence per domain (id<TAB>reason)
    stats/mean_std_263_train.npz                   mean/std of the usable train frames (contacts 0/1)

and returns a `Params` built from the repository's params.yaml with every path moved under `root`
and the `train` section shrunk to a seconds-long CPU run (d_model 16, 1 layer, T 8). The index also
holds one sequence with status "skipped" that must never be used, and each domain has one sequence
shorter than the window (padding).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from flowmimic.body.skeleton import N_JOINTS
from flowmimic.cache.catalog import SPLITS
from flowmimic.demo.clips import dance_clips, studio_clips
from flowmimic.features import layout
from flowmimic.features.humanml3d import joints_to_features
from flowmimic.params import Params, params_from_dict, read_yaml
from flowmimic.stages.stats import finalize_std
from flowmimic.taxonomy import GENRES

REPO = Path(__file__).resolve().parents[1]

TINY_TRAIN: dict[str, Any] = dict(
    seed=0, device="cpu", nproc_per_node=1, threads=1, d_model=16, n_layers=1, n_heads=2, mlp_ratio=2.0, dropout=0.1,
    d_z=8, style_head=True, seq_len=8, batch_size=4, mvh_epoch_ratio=1.0, windows_per_sequence=2,
    num_workers=0, epochs=2, lr=3e-3, min_lr_ratio=0.1, weight_decay=0.01, warmup_steps=2, grad_clip=1.0,
    kl_warmup_steps=6, val_every_epochs=1, log_every_steps=1, resume=True,
)


TINY_PRIOR: dict[str, Any] = dict(
    seed=0, device="cpu", nproc_per_node=1, threads=1, d_model=16, n_layers=1, n_heads=2, mlp_ratio=2.0, dropout=0.0, kernel=3, out_kernel=3,
    seq_len=8, batch_size=4, windows_per_sequence=2, epochs=2, lr=3e-3, min_lr_ratio=0.1, weight_decay=0.0,
    warmup_steps=2, grad_clip=1.0, cond_dropout=0.2, context_rate=0.5, time_sampling="logit_normal", ema_decay=0.9,
    val_every_epochs=1, log_every_steps=1, resume=True,
)


def _sequence(frames: int, domain: str, genre_id: int, seed: int, feet_threshold: float) -> np.ndarray:
    """(frames, 263) float32 features of a demo motion of `frames` + 1 joint frames at 20 fps."""
    if domain == "aist":
        motion = dance_clips(1, frames + 1, fps=20.0, seed=seed, genres=[GENRES[genre_id - 1]])
    else:
        motion = studio_clips(1, frames + 1, fps=20.0, seed=seed)
    return joints_to_features(motion.joints[0, :, :N_JOINTS], feet_threshold).numpy()


def make_fake_cache(root: str | Path, *, n_train: int = 6, n_val: int = 3, n_test: int = 3, frames: tuple[int, int] = (9, 30),
                    seed: int = 0, train: dict[str, Any] | None = None, prior: dict[str, Any] | None = None) -> Params:
    """Write the fake cache + splits + bad lists + stats under `root`; return matching Params.

    Args:
        n_train / n_val / n_test: usable sequences per domain and split (plus one bad-listed train sequence
            per domain and one skipped AIST++ sequence).
        frames: [min, max) frames of the regular sequences; one per domain and split has 5 frames.
        train: overrides of `TINY_TRAIN` (itself an override of params.yaml's train section).
        prior: overrides of `TINY_PRIOR` (idem, the prior section).
    """
    root = Path(root).resolve()
    raw = read_yaml(REPO / "params.yaml")
    rng = np.random.default_rng(seed)
    cache, splits, validate = root / "cache", root / "splits", root / "validate"
    rows: list[dict[str, Any]] = []
    train_arrays: list[np.ndarray] = []
    for domain_id, domain in enumerate(("aist", "mvh")):
        bad_lines = []
        for split, n in (("train", n_train + 1), ("val", n_val), ("test", n_test)):
            ids = []
            for i in range(n):
                seq_id = f"{domain}_{split}_{i:02d}"
                genre = (i % 10) + 1 if domain == "aist" else 0
                n_frames = 5 if i == 1 else int(rng.integers(*frames))
                clip_seed = seed * 10_000 + domain_id * 1_000 + SPLITS.index(split) * 100 + i
                arr = _sequence(n_frames, domain, genre, clip_seed, raw["features"]["feet_threshold"])
                rel = f"{domain}/{seq_id}.npy"
                (cache / domain).mkdir(parents=True, exist_ok=True)
                np.save(cache / rel, arr)
                ids.append(seq_id)
                if split == "train" and i == n - 1:
                    bad_lines.append(f"{seq_id}\tnan")        # listed bad by validation: never used
                elif split == "train":
                    train_arrays.append(arr)
                rows.append(dict(id=seq_id, domain=domain, genre_id=genre, performer=f"p{i % 3}",
                                 frames=n_frames, seconds=n_frames / 20, source=f"raw/{seq_id}", status="ok",
                                 reason=None, message=None, path=rel, notes=[]))
            if domain == "aist" and split == "train":   # cached but skipped: status != ok
                ids.append("aist_train_skipped")
                rows.append(dict(id="aist_train_skipped", domain=domain, genre_id=1, performer="p0", frames=0,
                                 seconds=0.0, source="raw/x", status="skipped", reason="too_short",
                                 message="too short", path=None, notes=[]))
            splits.mkdir(parents=True, exist_ok=True)
            (splits / f"{domain}_{split}.txt").write_text("".join(f"{s}\n" for s in ids))
        validate.mkdir(parents=True, exist_ok=True)
        (validate / f"bad_{domain}.txt").write_text("".join(f"{s}\n" for s in bad_lines))
    (cache / "index.json").write_text(json.dumps({"version": 1, "sequences": rows}))

    allf = np.concatenate(train_arrays)
    mean, std = allf.mean(0), allf.std(0)
    # Joints the demo never bends (e.g. the toes) have ~0 std: floor it as the stats stage does.
    std = finalize_std(std, group_std=False, min_std=raw["stats"]["min_std"])
    mean[layout.CONTACTS], std[layout.CONTACTS] = 0.0, 1.0
    (root / "stats").mkdir(parents=True, exist_ok=True)
    stats_path = root / "stats" / "mean_std_263_train.npz"
    np.savez(stats_path, mean=mean.astype(np.float32), std=std.astype(np.float32))

    raw["data"].update(aist_root=str(root / "raw/aist"), mvh_root=str(root / "raw/mvh"))
    raw["demo"]["root"] = str(root / "demo")
    raw["split"]["dir"] = str(splits)
    raw["cache"]["dir"] = str(cache)
    raw["validate"].update(dir=str(validate), metrics=str(root / "metrics/data.json"))
    raw["stats"]["path"] = str(stats_path)
    raw["train"].update(TINY_TRAIN, model_path=str(root / "models/motion_vae.pt"),
                        last_path=str(root / "models/last.pt"), live_dir=str(root / "dvclive/train"))
    raw["train"].update(train or {})
    raw["latents"].update(dir=str(root / "latents"), threads=1)
    raw["prior"].update(TINY_PRIOR, model_path=str(root / "models/flow_prior.pt"),
                        last_path=str(root / "models/flow_prior_last.pt"), live_dir=str(root / "dvclive/prior"))
    raw["prior"].update(prior or {})
    raw["evaluate"].update(metrics=str(root / "metrics/eval.json"), plots_dir=str(root / "metrics/plots"))
    raw["classifier"].update(model_path=str(root / "models/genre_classifier.pt"),
                             metrics=str(root / "metrics/classifier.json"), plots_dir=str(root / "metrics/classifier"))
    raw["generate"].update(metrics=str(root / "metrics/generate.json"), plots_dir=str(root / "metrics/generate"),
                           grid=str(root / "metrics/transfer_grid.npz"))
    return params_from_dict(raw, source=root / "params.yaml")


def write_params(params: Params, path: str | Path) -> Path:
    """Write `params` as a params.yaml (for `flowmimic ... --params PATH` subprocesses)."""
    path = Path(path)
    path.write_text(yaml.safe_dump(params.model_dump(mode="json", by_alias=True), sort_keys=False))
    return path
