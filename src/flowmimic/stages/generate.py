"""Generate stage: transfer, sample and re-label with the trained VAE and its flow prior; judge it all
on the test split.

Everything is made with the generation library (`flowmimic.generation.core`: `encode_features`,
`decode_latents`, `sample` -- the functions behind `flowmimic transfer` / `sample`; `generation.flow`
and `generation.inbetween` for the flow prior), decoded at `generate.decoder_guidance`, and judged
in windows of `evaluate.window_frames` frames by the frozen genre classifier (`classifier.model_path`,
trained on real AIST++ train windows only):

  real          real AIST++ test windows: the classifier's accuracy (the yardstick for the rest);
  transfer      every MVHumanNet test sequence encoded as MVHumanNet and decoded as AIST++ in each
                of the 10 genres; how often the classifier names the target genre, and the content
                kept (pelvis-trajectory error in metres and foot-contact agreement, window by window
                in the window's canonical frame);
  samples       the VAE-prior sampler (z ~ N(0, I) per frame): `generate.samples_per_genre` windows
                per genre (seed `generate.seed` + genre id) and `generate.mvh_samples` decoded as
                MVHumanNet (seed + 100), when `generate.sampler` is vae_prior or both;
  flow          the flow prior's samples, the same counts and seeds, `generate.steps` steps of
                `generate.solver` at guidance `generate.guidance` (FID_k also at each of
                `generate.fid_steps`), when `generate.sampler` is flow or both; and the in-betweening
                check (`inbetween`, `evaluation.inbetween`);
  label_matters up to `generate.label_windows_per_genre` AIST++ test windows per genre, encoded and
                decoded with every OTHER genre label: how often the classifier follows the new label
                (`followed`) or keeps the original (`kept_original`), beside its accuracy on the same
                windows decoded with their own label (`reconstructed_accuracy`);
  floor         the real-vs-real reference: real AIST++ TRAIN windows against the real test windows
                (`mvh.floor`: the same for MVHumanNet).

FID_k / FID_g / Div_k / Div_g (`motion_metrics`, z-scored by the real test windows), foot skating
(as decoded, and `foot_skating_with_foot_lock`: as the commands write the motion by default),
mean joint acceleration and a memorisation check (each window's nearest train window in the
channels that make the motion, and over all continuous channels, against the same for real test
windows; `evaluation.generated.memorisation`) for every sample set; 95 % bootstrap intervals over
windows on pooled figures; per-genre figures only for genres with at least
`motion_metrics.MIN_WINDOWS_PER_GENRE` windows (counts otherwise). `comparison` sets the flow beside
the VAE-prior sampler against the issue's targets.

Writes `generate.metrics` (DVC metrics); under `generate.plots_dir`, `transfer_grid.gif` (the first
MVHumanNet test sequence and its transfers to `generate.gif_genres`), `transfer_confusion.json` and
`flow_samples.gif` (one flow sample per genre); and `generate.grid`, the transfer GIF's joints
(`scripts/render_transfer.py` draws the README's picture from it).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from flowmimic.cache.catalog import CachedSequence, usable_sequences
from flowmimic.errors import DataError
from flowmimic.evaluation.generated import (WindowSet, acceleration, content_kept, distribution, foot_skating, judged,
                                            mean_with_interval, memorisation)
from flowmimic.features.humanml3d import features_to_joints
from flowmimic.features.layout import CONTACTS
from flowmimic.generation.footlock import lock_feet
from flowmimic.generation.flow import load_prior, sample_latents
from flowmimic.evaluation.inbetween import inbetween_check, skating_rate
from flowmimic.evaluation.reconstruct import evaluation_keys
from flowmimic.generation.checkpoint import load_generation_model
from flowmimic.generation.core import FlowSampling, decode_latents, encode_features, restyle_latents, sample
from flowmimic.io import save_npz, write_json
from flowmimic.model.classifier import load_classifier
from flowmimic.evaluation.motion_metrics import MIN_WINDOWS_PER_GENRE, diversity, fid, zscore_by_real
from flowmimic.params import Params
from flowmimic.stages.classifier import stack_windows
from flowmimic.taxonomy import DOMAINS, GENRE_NAMES, N_GENRES, genre_name, parse_genre

log = logging.getLogger(__name__)
MVH_SEED_OFFSET = 100          # MVHumanNet samples' seed: generate.seed + 100 (genres use seed + 1..10)


def _windows(seqs: list[CachedSequence], window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every full non-overlapping window of `seqs`: raw features (N, W, 263) and genre ids (N,)."""
    keys, _ = evaluation_keys([s.frames for s in seqs], window)
    x, _, genres = stack_windows(seqs, keys, window)
    return x, genres


def _cut(features: torch.Tensor, window: int) -> torch.Tensor:
    """(B, N, 263) sequences -> (B * K, W, 263): each cut into its K full non-overlapping windows."""
    k = features.shape[1] // window
    return features[:, :k * window].reshape(features.shape[0] * k, window, features.shape[-1])


def _pick_per_genre(genres: torch.Tensor, per_genre: int, seed: int) -> torch.Tensor:
    """Indices of up to `per_genre` windows of each genre, drawn without replacement (seeded)."""
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(genres.numpy() == g))[:per_genre] for g in range(1, N_GENRES + 1)]
    return torch.from_numpy(np.sort(np.concatenate(picked))).long()


def _restyle(z: torch.Tensor, prior, genres: list[int], p) -> torch.Tensor:
    """Latents re-generated under AIST++ + `genres` at `generate.transfer_strength` (0: unchanged)."""
    return restyle_latents(z, prior, "aist", genres, p.transfer_strength, steps=p.transfer_steps, solver=p.solver,
                           guidance=p.transfer_guidance, seed=p.seed)


def _transfers(gm, prior, seqs: list[CachedSequence], p) -> list[torch.Tensor]:
    """Each MVHumanNet sequence -> its 10 transfers (10, N, 263), genre g at row g - 1."""
    genres = list(range(1, N_GENRES + 1))
    out = []
    for seq in seqs:
        z = encode_features(gm, torch.from_numpy(np.asarray(seq.load(), dtype=np.float32))[None], "mvh")
        z = _restyle(z.expand(N_GENRES, -1, -1), prior, genres, p)
        out.append(decode_latents(gm, z, "aist", genres, p.decoder_guidance))
    return out


def _div(features: torch.Tensor) -> float:
    """Diversity of the real set in its own z-scored space (the yardstick for Div_k / Div_g)."""
    return round(diversity(zscore_by_real(features)[0]), 4)


def _strided_windows(seqs: list[CachedSequence], window: int, stride: int) -> torch.Tensor:
    """Raw windows (N, W, 263) starting every `stride` frames of each sequence (the memorisation search set)."""
    keys = [(i, st) for i, seq in enumerate(seqs) for st in range(0, seq.frames - window + 1, stride)]
    return stack_windows(seqs, keys, window)[0]


def _sample_set(name: str, feats: torch.Tensor, target: torch.Tensor | None, real: WindowSet, real_acc: float,
                train: torch.Tensor, real_recon: torch.Tensor, gm, judge, fps: float, boot: int, seed: int) -> dict:
    """Everything measured on one set of sample windows (N, W, 263) against one real set (`real_recon`: its
    windows through the VAE, the memorisation check's decoder-matched reference)."""
    windows = WindowSet.of(feats, fps)
    out: dict = {"windows": len(windows)}
    if target is not None:
        acc, _ = judged(judge, windows.features, target, boot, seed)
        out["classified_as_genre"] = acc
        out["relative_to_real"] = round(acc["rate"] / real_acc, 4) if real_acc else None
    out |= distribution(real, windows, boot, seed)
    out["div_k_relative_to_real"] = round(out["div_k"] / _div(real.kinetic), 4)
    out["foot_skating"] = foot_skating(windows, fps, boot, seed)
    out["foot_skating_with_foot_lock"] = _locked_skating(feats, fps)
    out["acceleration_mps2"] = acceleration(windows, fps, boot, seed)
    out["memorisation"] = memorisation(feats, real.features, train, gm.normalizer.normalize, real_recon, boot, seed)
    log.debug("generate: %s done", name)
    return out


def _real_reference(real: WindowSet, floor: WindowSet, train: torch.Tensor, gm, fps: float, boot: int, seed: int) -> dict:
    return {"windows": len(real), "div_k": _div(real.kinetic), "div_g": _div(real.geometric),
            "foot_skating": foot_skating(real, fps, boot, seed), "acceleration_mps2": acceleration(real, fps, boot, seed),
            "memorisation_median_nn_distance": memorisation(real.features[:2], real.features, train,
                                                            gm.normalizer.normalize)["real_test_median_nn_distance"],
            "floor": {"windows": len(floor), **distribution(real, floor, boot, seed)}}


def _vae_prior_samples(gm, params: Params, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    p, fps = params.generate, float(params.data.fps)
    aist = [sample(gm, params, g, seconds=window / fps, n=p.samples_per_genre, seed=p.seed + g,
                   guidance=p.decoder_guidance) for g in range(1, N_GENRES + 1)]
    # MVHumanNet has no genre (0 = unknown), which `sample` does not take: the same draw, decoded here
    g = torch.Generator().manual_seed(p.seed + MVH_SEED_OFFSET)
    z = torch.randn((p.mvh_samples, window, gm.model.config.d_z), generator=g)
    return (torch.stack([torch.from_numpy(m.features) for ms in aist for m in ms]),
            decode_latents(gm, z, "mvh", 0, p.decoder_guidance))


def _flow_aist(gm, prior, params: Params, window: int, steps: int) -> torch.Tensor:
    """AIST++ flow samples with the VAE-prior sampler's counts and seeds: (10 n, W, 263), by genre."""
    p, fps = params.generate, float(params.data.fps)
    flow = FlowSampling(prior, steps, p.solver, p.guidance, p.temperature)
    return torch.cat([torch.stack([torch.from_numpy(m.features) for m in sample(
        gm, params, g, seconds=window / fps, n=p.samples_per_genre, seed=p.seed + g, guidance=p.decoder_guidance,
        flow=flow)]) for g in range(1, N_GENRES + 1)])


def _flow_samples(gm, prior, params: Params, window: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow samples with the VAE-prior sampler's counts and seeds: (10 n, W, 263) AIST++ by genre, (m, W, 263) MVHumanNet."""
    p = params.generate
    aist = _flow_aist(gm, prior, params, window, steps)
    z = sample_latents(prior, p.mvh_samples, window, DOMAINS.index("mvh"), 0, steps=steps, solver=p.solver,
                       guidance=p.guidance, generator=torch.Generator().manual_seed(p.seed + MVH_SEED_OFFSET),
                       temperature=p.temperature)
    return aist, decode_latents(gm, z, "mvh", 0, p.decoder_guidance)


def _locked_skating(features: torch.Tensor, fps: float) -> float | None:
    """Foot skating of (N, W, 263) windows once their feet are locked, as the commands write them
    with `generate.foot_lock` (`generation.footlock`)."""
    joints = features_to_joints(features)
    return skating_rate(torch.stack([lock_feet(j, f[:, CONTACTS]) for j, f in zip(joints, features)]), fps)


def _comparison(flow: dict | None, vae: dict | None, real_acc: float, floor_fid_k: float) -> dict:
    """The issue's done-when targets for the flow samples (AIST++ test split)."""
    if flow is None:
        return {}
    out = {"flow_fid_k": flow["fid_k"], "floor_fid_k": floor_fid_k,
           "flow_fid_k_over_floor": round(flow["fid_k"] / floor_fid_k, 4) if floor_fid_k else None,
           "flow_accuracy_relative_to_real": flow.get("relative_to_real"),
           "flow_div_k_relative_to_real": flow["div_k_relative_to_real"],
           "flow_memorisation_passed": flow["memorisation"]["passed"],
           "flow_memorisation_ratio_to_real": flow["memorisation"]["ratio_to_real"],
           # reported beside the target: the same check against real test windows through the VAE
           "flow_memorisation_ratio_to_reconstructed": flow["memorisation"].get("ratio_to_reconstructed"),
           "flow_memorisation_ratio_all_continuous": flow["memorisation"]["all_continuous"]["ratio_to_real"]}
    targets = {"fid_k_at_most_3x_floor": out["flow_fid_k_over_floor"] is not None and out["flow_fid_k_over_floor"] <= 3,
               "accuracy_at_least_0.9_of_real": (out["flow_accuracy_relative_to_real"] or 0) >= 0.9,
               "div_k_within_25pct_of_real": abs(out["flow_div_k_relative_to_real"] - 1) <= 0.25,
               "not_nearer_to_train_than_real": out["flow_memorisation_passed"]}
    if vae is not None:
        out["vae_prior_fid_k"] = vae["fid_k"]
        out["flow_fid_k_over_vae_prior"] = round(flow["fid_k"] / vae["fid_k"], 4) if vae["fid_k"] else None
        targets["fid_k_at_most_half_of_vae_prior"] = (out["flow_fid_k_over_vae_prior"] or 1e9) <= 0.5
    out["targets"] = {k: bool(v) for k, v in targets.items()}
    return out


def main(params: Params) -> dict:
    """Generate, judge and write the metrics (see the module docstring); returns them."""
    p, fps, window = params.generate, float(params.data.fps), params.evaluate.window_frames
    torch.set_num_threads(params.train.threads)
    started = time.perf_counter()
    paths = (params.cache.dir, params.split.dir, params.validate_.dir)
    aist_test = [s for s in usable_sequences(*paths, "test", domains=("aist",)) if s.genre_id > 0]
    aist_train = [s for s in usable_sequences(*paths, "train", domains=("aist",)) if s.genre_id > 0]
    mvh_test = [s for s in usable_sequences(*paths, "test", domains=("mvh",)) if s.frames >= window]
    mvh_train = [s for s in usable_sequences(*paths, "train", domains=("mvh",)) if s.frames >= window]
    if not aist_test or not mvh_test:
        raise DataError(params.split.dir, f"generate needs AIST++ and MVHumanNet test sequences of at least "
                        f"{window} frames (got {len(aist_test)} and {len(mvh_test)})", "empty")
    gm = load_generation_model(params.train.model_path)
    use_vae, use_flow = p.sampler in ("vae_prior", "both"), p.sampler in ("flow", "both")
    prior = (load_prior(params.prior.model_path, gm.sha256, vae_path=params.train.model_path)
             if use_flow or p.transfer_strength > 0 else None)
    judge = load_classifier(params.classifier.model_path)
    seed, boot, dg = p.seed, p.bootstrap, p.decoder_guidance

    x_real, g_real = _windows(aist_test, window)
    real = WindowSet.of(x_real, fps)
    floor = WindowSet.of(_windows(aist_train, window)[0], fps)
    real_acc, _ = judged(judge, x_real, g_real, boot, seed)
    mvh_real = WindowSet.of(_windows(mvh_test, window)[0], fps)
    recon = {"aist": decode_latents(gm, encode_features(gm, x_real, "aist"), "aist", g_real.tolist(), dg),
             "mvh": decode_latents(gm, encode_features(gm, mvh_real.features, "mvh"), "mvh", 0, dg)}
    mvh_floor = WindowSet.of(_windows(mvh_train, window)[0], fps) if mvh_train else None
    train_aist = _strided_windows(aist_train, window, p.memorisation_stride)
    train_mvh = _strided_windows(mvh_train, window, p.memorisation_stride) if mvh_train else train_aist

    # Transfers: every MVHumanNet test sequence to each genre, judged window by window.
    timings = {}
    t0 = time.perf_counter()
    sources, outputs, targets = [], [], []
    full = _transfers(gm, prior, mvh_test, p)
    for seq, out in zip(mvh_test, full):
        src = _cut(torch.from_numpy(np.asarray(seq.load(), dtype=np.float32))[None], window)      # (K, W, 263)
        sources.append(src.repeat(N_GENRES, 1, 1))
        outputs.append(_cut(out, window))                                                     # (10K, W, 263)
        targets.append(torch.arange(1, N_GENRES + 1).repeat_interleave(src.shape[0]))
    src_set, transfer = WindowSet.of(torch.cat(sources), fps), WindowSet.of(torch.cat(outputs), fps)
    t_target = torch.cat(targets)
    transfer_acc, _ = judged(judge, transfer.features, t_target, boot, seed)
    root_err, contact_agree = content_kept(src_set, transfer)
    timings["transfers_s"] = round(time.perf_counter() - t0, 1)

    s_target = torch.arange(1, N_GENRES + 1).repeat_interleave(p.samples_per_genre)
    rate = real_acc["rate"]

    def judge_sampler(name: str, aist: torch.Tensor, mvh: torch.Tensor) -> dict:
        out = _sample_set(name, aist, s_target, real, rate, train_aist, recon["aist"], gm, judge, fps, boot, seed)
        out["mvh"] = _sample_set(name + "/mvh", mvh, None, mvh_real, 0.0, train_mvh, recon["mvh"], gm, judge, fps, boot,
                                 seed)
        return out

    samples = flow = inbetween = None
    flow_aist = None
    if use_vae:
        t0 = time.perf_counter()
        samples = judge_sampler("vae_prior", *_vae_prior_samples(gm, params, window))
        timings["vae_prior_s"] = round(time.perf_counter() - t0, 1)
    if use_flow:
        t0 = time.perf_counter()
        flow_aist, flow_mvh = _flow_samples(gm, prior, params, window, p.steps)
        flow = judge_sampler("flow", flow_aist, flow_mvh)
        flow["steps"], flow["solver"], flow["guidance"], flow["temperature"] = p.steps, p.solver, p.guidance, p.temperature
        flow["fid_k_at_steps"] = {}
        for n in p.fid_steps:
            feats = flow_aist if n == p.steps else _flow_aist(gm, prior, params, window, n)
            flow["fid_k_at_steps"][str(n)] = round(fid(real.kinetic, WindowSet.of(feats, fps).kinetic), 4)
        timings["flow_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        inbetween = inbetween_check(gm, prior, aist_test, params, boot, seed)
        timings["inbetween_s"] = round(time.perf_counter() - t0, 1)

    # Label matters: real test windows decoded with their own label and with each other label.
    t0 = time.perf_counter()
    pick = _pick_per_genre(g_real, p.label_windows_per_genre, seed)
    z = encode_features(gm, x_real[pick], "aist")                                             # (n, W, Z)
    own = g_real[pick]
    others = torch.stack([torch.tensor([g for g in range(1, N_GENRES + 1) if g != int(o)]) for o in own])   # (n, 9)
    relabel_z = _restyle(z.repeat_interleave(N_GENRES - 1, 0), prior, others.flatten().tolist(), p)
    relabel = decode_latents(gm, relabel_z, "aist", others.flatten().tolist(), dg)
    relabel_pred = judge.predict(relabel)
    label_matters, _ = judged(judge, relabel, others.flatten(), boot, seed)
    recon_acc, _ = judged(judge, decode_latents(gm, z, "aist", own.tolist(), dg), own, boot, seed)
    timings["label_matters_s"] = round(time.perf_counter() - t0, 1)

    metrics = {
        "settings": {"window_frames": window, "sampler": p.sampler, "steps": p.steps, "solver": p.solver,
                     "guidance": p.guidance, "temperature": p.temperature, "decoder_guidance": dg, "transfer_strength": p.transfer_strength,
                     "transfer_guidance": p.transfer_guidance, "transfer_steps": p.transfer_steps,
                     "samples_per_genre": p.samples_per_genre,
                     "mvh_samples": p.mvh_samples, "label_windows_per_genre": p.label_windows_per_genre,
                     "bootstrap": boot, "min_windows_per_genre": MIN_WINDOWS_PER_GENRE,
                     "interval": "95% percentile bootstrap over windows",
                     "memorisation": "nearest train window (start every generate.memorisation_stride frames) by "
                                     "RMS distance of the VAE-normalised root and root-relative joint positions "
                                     "(layout.MOTION: the motion written); all_continuous: over every "
                                     "continuous channel",
                     "features": "kinetic 66-D / geometric 32-D on 22 joints at 60 fps, z-scored by the real "
                                 "test windows: not comparable with published AIST++ tables"},
        "real": {"classifier_accuracy": real_acc, "div_k": _div(real.kinetic), "div_g": _div(real.geometric),
                 "foot_skating": foot_skating(real, fps, boot, seed),
                 "acceleration_mps2": acceleration(real, fps, boot, seed),
                 "mvh": _real_reference(mvh_real, mvh_floor or mvh_real, train_mvh, gm, fps, boot, seed)},
        "floor": {"what": "real AIST++ train windows against the real test windows", "windows": len(floor),
                  **distribution(real, floor, boot, seed)},
        "transfer": {"sources": len(mvh_test), "classified_as_target": transfer_acc,
                     "relative_to_real": round(transfer_acc["rate"] / rate, 4) if rate else None,
                     "root_trajectory_error_m": mean_with_interval(root_err, boot, seed),
                     "foot_contact_agreement": mean_with_interval(contact_agree, boot, seed),
                     **distribution(real, transfer, boot, seed), "foot_skating": foot_skating(transfer, fps, boot, seed),
                     "foot_skating_with_foot_lock": _locked_skating(transfer.features, fps)},
        "label_matters": {"source_windows": int(len(pick)), "followed": label_matters,
                          "kept_original": round(float((relabel_pred == own.repeat_interleave(N_GENRES - 1)).float()
                                                       .mean()), 4),
                          "reconstructed_accuracy": recon_acc},
    }
    metrics["real"]["memorisation_median_nn_distance"] = memorisation(
        x_real[:2], x_real, train_aist, gm.normalizer.normalize)["real_test_median_nn_distance"]
    if samples is not None:
        metrics["samples"] = samples
    if flow is not None:
        metrics["flow"] = flow
        metrics["inbetween"] = inbetween
        metrics["comparison"] = _comparison(flow, samples, rate, metrics["floor"]["fid_k"])
    # Timings go to the log (scripts/stage_times.py reads them), not into the metrics: a DVC output
    # must be the same for the same inputs, or two identical runs would give different dvc.lock hashes.
    log.info("generate: timings %s", json.dumps(timings))
    _write_plots(Path(p.plots_dir), p, mvh_test[0], full[0], transfer, t_target, judge, flow_aist)
    write_json(p.metrics, metrics)
    log.info("generate: classifier on real test %.3f; transfers as target %.3f (%s x real); label followed "
             "%.3f; %s%s; %.1f s -> %s", rate, transfer_acc["rate"], metrics["transfer"]["relative_to_real"],
             label_matters["rate"],
             f"VAE-prior samples as genre {samples['classified_as_genre']['rate']:.3f}, FID_k {samples['fid_k']:.1f}; "
             if samples else "",
             f"flow samples as genre {flow['classified_as_genre']['rate']:.3f}, FID_k {flow['fid_k']:.1f} "
             f"(floor {metrics['floor']['fid_k']:.1f}), Div_k x{flow['div_k_relative_to_real']:.2f}"
             if flow else "", time.perf_counter() - started, p.metrics)
    return metrics


def _write_plots(plots_dir: Path, p, seq: CachedSequence, transfers: torch.Tensor, transfer: WindowSet,
                 target: torch.Tensor, judge, flow_aist: torch.Tensor | None) -> None:
    """The transfers' confusion (target vs predicted genre), the grid GIF of `seq` and three transfers,
    and (with flow samples, (10 n, W, 263) by genre) a GIF of the first flow sample of every genre."""
    from flowmimic.viz import animate_panels

    pred = judge.predict(transfer.features.float())
    write_json(plots_dir / "transfer_confusion.json",
               [{"target": GENRE_NAMES[int(t) - 1], "predicted": GENRE_NAMES[int(q) - 1]} for t, q in zip(target, pred)])
    source = torch.from_numpy(np.asarray(seq.load(), dtype=np.float32))[: p.gif_frames]
    genres = [parse_genre(g) for g in p.gif_genres]
    panels = [(features_to_joints(source).numpy(), "MVHumanNet source")]
    panels += [(features_to_joints(transfers[g - 1, : p.gif_frames]).numpy(), f"as {genre_name(g)}") for g in genres]
    save_npz(p.grid, joints=np.stack([j for j, _ in panels]).astype(np.float32),
             labels=np.array([label for _, label in panels]), source=np.array(seq.id))
    animate_panels(panels, plots_dir / "transfer_grid.gif", fps=p.gif_fps,
                   title=f"{seq.id}: transferred to three AIST++ genres")
    if flow_aist is not None:
        per = flow_aist.shape[0] // N_GENRES
        panels = [(features_to_joints(flow_aist[(g - 1) * per, : p.gif_frames]).numpy(), genre_name(g))
                  for g in range(1, N_GENRES + 1)]
        animate_panels(panels, plots_dir / "flow_samples.gif", fps=p.gif_fps,
                       title="flow prior: one sample per genre")
