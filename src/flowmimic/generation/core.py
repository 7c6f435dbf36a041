"""reconstruct, transfer, sample: the library functions behind the user commands.

The VAE's encoder sees the capture domain only; its decoder sees domain + genre. So:
  reconstruct  encode with the input's domain, decode with the same domain and the input's genre;
  transfer     encode with the input's (source) domain, decode with a target domain and genre;
               with a flow prior and `strength` > 0, the latents are first re-generated under the
               target condition (`restyle_latents`: SDEdit through the prior), because the VAE's
               per-frame latent carries the genre itself and a bare label swap changes little;
  sample       decode latents drawn from the flow prior (`FlowSampling`), or from the VAE's own
               prior N(0, I), one per frame (which generates badly: metrics/generate.json).
Encoding uses posterior means (deterministic). Every function works on sequences of any length
through `flowmimic.generation.windows` and returns `GeneratedMotion`s; writing them is
`flowmimic.generation.outputs`.

Outputs come from 263-D features, so their joints are on HumanML3D's target skeleton, and have
one frame fewer than their input, in a canonical frame; an output made from joints is put back
where its input was (`flowmimic.generation.placement`) unless `canonical=True`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from flowmimic.errors import ConfigError, DataError
from flowmimic.features import layout
from flowmimic.features.humanml3d import features_to_joints
from flowmimic.generation.checkpoint import GenerationModel, load_generation_model
from flowmimic.generation.flow import LoadedPrior, edit_latents, load_prior, sample_latents
from flowmimic.generation.footlock import lock_feet
from flowmimic.generation.inputs import MotionInput, read_input
from flowmimic.generation.placement import put_back
from flowmimic.generation.windows import decode_sequence, encode_sequence, overlap_of
from flowmimic.model.vae import to_features
from flowmimic.params import Params
from flowmimic.taxonomy import DOMAINS, parse_domain, parse_genre

PRIOR_SOURCE = "prior"
FLOW_SOURCE = "flow prior"


@dataclass(frozen=True)
class GeneratedMotion:
    """One generated motion and what it was made from (the `.npz` output holds all of it)."""

    joints: np.ndarray          # (T, 22, 3) float32, metres, y-up; put back unless `canonical`
    features: np.ndarray        # (N, 263) float32, canonical frame, contacts 0/1
    fps: float
    domain: str                 # the domain it was decoded as
    genre_id: int               # the genre it was decoded with (0 = unknown)
    source: str                 # the input file, or "prior" for samples
    checkpoint_sha256: str
    canonical: bool


def _as_model(checkpoint: str | Path | GenerationModel, device: str | torch.device) -> GenerationModel:
    return checkpoint if isinstance(checkpoint, GenerationModel) else load_generation_model(checkpoint, device)


def _genre(genre: int | str) -> int:
    try:
        return parse_genre(genre)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _domain(domain: str) -> str:
    try:
        return DOMAINS[parse_domain(domain)]
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _ids(value: int, n: int, device: torch.device) -> Tensor:
    return torch.full((n,), value, dtype=torch.long, device=device)


def decode_latents(gm: GenerationModel, z: Tensor, domain: str, genre_id: int | Sequence[int],
                   guidance: float = 1.0) -> Tensor:
    """Latents (B, N, Z) -> raw 263-D features (B, N, 263) on the CPU, contacts thresholded to 0/1.

    `genre_id`: one id for the whole batch or B ids; `guidance`: classifier-free guidance scale over
    the genre label (1 = plain decoding; see `model.genre_control`).
    """
    b = z.shape[0]
    genres = (_ids(genre_id, b, gm.device) if isinstance(genre_id, int)
              else torch.as_tensor(list(genre_id), dtype=torch.long, device=gm.device))
    if genres.shape != (b,):
        raise ValueError(f"need one genre id or {b}, got {genres.shape[0]}")
    out = decode_sequence(gm.model, z.to(gm.device), _ids(DOMAINS.index(domain), b, gm.device),
                          genres, gm.window, overlap_of(gm.window), guidance)
    feats = gm.normalizer.denormalize(to_features(out.float())).cpu()                 # (B, N, 263)
    feats[..., layout.CONTACTS] = (feats[..., layout.CONTACTS] > 0.5).to(feats.dtype)
    if not bool(torch.isfinite(feats).all()):
        raise DataError(gm.path, "the model produced NaN/Inf features (broken weights?)", "nan")
    return feats


def encode_features(gm: GenerationModel, features: Tensor, domain: str) -> Tensor:
    """Raw features (B, N, 263) of one domain -> blended per-frame posterior means (B, N, Z) on the model's device."""
    x = gm.normalizer.normalize(features).to(gm.device)                               # (B, N, 263)
    return encode_sequence(gm.model, x, _ids(DOMAINS.index(domain), x.shape[0], gm.device), gm.window,
                           overlap_of(gm.window))


def encode_input(gm: GenerationModel, motion: MotionInput) -> Tensor:
    """An input's features -> its blended per-frame posterior means (1, N, Z) on the model's device."""
    return encode_features(gm, motion.features[None], motion.domain)


def restyle_latents(z: Tensor, prior: LoadedPrior | None, domain: str, genre_id: int | Sequence[int],
                    strength: float, *, steps: int, solver: str = "midpoint", guidance: float = 1.0,
                    seed: int = 0) -> Tensor:
    """Source latents (B, N, Z) re-generated under a target (domain, genre) by the flow prior (B, N, Z).

    The VAE's per-frame latent holds the whole pose, genre included (metrics/generate.json,
    `label_matters` at strength 0: the classifier follows a swapped decoder label almost never), so
    transfer moves the latents themselves: SDEdit (`generation.flow.edit_latents`) from noise level
    `strength` under the target condition. 0 returns `z` (a plain label swap); 1 ignores the source
    (a fresh sample); between, the larger the strength the more of the target genre and the less of
    the source's poses (`dvc exp run -S generate.transfer_strength=...` shows the trade-off).
    One noise draw (from a CPU generator seeded with `seed`) is shared by the batch, so a source's
    transfers to several genres differ by the genre alone, and a batch gives each row what a call
    with that row alone gives.
    """
    if strength == 0.0:
        return z
    if prior is None:
        raise ConfigError(f"transfer strength {strength} needs a flow prior (train it: `dvc repro train_prior`)")
    b = z.shape[0]
    genres = [genre_id] * b if isinstance(genre_id, int) else list(genre_id)
    noise = torch.randn((1, *z.shape[1:]), generator=torch.Generator().manual_seed(int(seed))).expand(b, -1, -1)
    out = edit_latents(prior, z.float().cpu(), DOMAINS.index(domain), genres, strength, steps, solver, guidance,
                       noise=noise)
    return out.to(z.device)


def _finish(gm: GenerationModel, feats: Tensor, motion: MotionInput, domain: str, genre_id: int,
            canonical: bool, foot_lock: bool = False) -> GeneratedMotion:
    joints = features_to_joints(feats)                                                # (N, 22, 3)
    placed = motion.joints is not None and not canonical      # a features input has no frame to go back to
    if placed:
        joints = put_back(joints, motion.joints)
    if foot_lock:
        joints = lock_feet(joints, feats[:, layout.CONTACTS])
    return GeneratedMotion(joints=joints.numpy().astype(np.float32), features=feats.numpy().astype(np.float32),
                           fps=motion.fps, domain=domain, genre_id=genre_id, source=motion.source,
                           checkpoint_sha256=gm.sha256, canonical=not placed)


def _load_input(input: str | Path | MotionInput, params: Params, fps: float | None,
                source_domain: str | None) -> MotionInput:
    if isinstance(input, MotionInput):
        return input
    return read_input(input, params, fps=fps, domain=source_domain)


def reconstruct(input: str | Path | MotionInput, checkpoint: str | Path | GenerationModel, params: Params, *,
                fps: float | None = None, domain: str | None = None, canonical: bool = False,
                device: str | torch.device = "cpu") -> GeneratedMotion:
    """Round-trip IN through the VAE (encode and decode with its own domain and genre).

    Args:
        input: a path of any kind `read_input` takes, or a `MotionInput`.
        checkpoint: a checkpoint path (default in the CLI: train.model_path) or a loaded `GenerationModel`.
        fps: frame rate of a joints `.npy` (default data.fps).
        domain: override of the domain inferred from the input's kind.
        canonical: keep the features' canonical frame (and one frame fewer) instead of putting it back.
    """
    gm = _as_model(checkpoint, device)
    motion = _load_input(input, params, fps, domain)
    feats = decode_latents(gm, encode_input(gm, motion), motion.domain, motion.genre_id)[0]
    return _finish(gm, feats, motion, motion.domain, motion.genre_id, canonical)


def transfer(input: str | Path | MotionInput, checkpoint: str | Path | GenerationModel, params: Params,
             genre: int | str, domain: str = "aist", *, source_domain: str | None = None, fps: float | None = None,
             canonical: bool = False, guidance: float = 1.0, prior: str | Path | LoadedPrior | None = None,
             strength: float = 0.0, steps: int = 16, solver: str = "midpoint", prior_guidance: float = 1.0,
             seed: int = 0, device: str | torch.device = "cpu", foot_lock: bool = False) -> GeneratedMotion:
    """Re-render IN in another genre: encode with its own (source) domain, decode with `domain` + `genre`.

    Args:
        genre: target genre as id 1..10, code ('gKR') or name ('Krump'), any case.
        domain: target domain, "aist" by default (the genres are AIST++'s: the model only saw
            genre labels together with the AIST++ domain).
        source_domain: override of the domain inferred from the input's kind.
        guidance: the decoder's classifier-free guidance over the genre label (1 = plain decoding;
            > 1 needs a model trained with `train.cond_dropout` > 0 to mean anything).
        prior, strength, steps, solver, prior_guidance, seed: re-generate the latents under the
            target condition through this flow prior first (`restyle_latents`); strength 0 (the
            default here; the CLI defaults to `generate.transfer_strength`) needs no prior.
        foot_lock: pin the feet the decoded contact labels plant (`generation.footlock`; the CLI
            defaults to `generate.foot_lock`).
        Others as in `reconstruct`.
    """
    gid, target = _genre(genre), _domain(domain)
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"transfer strength must be in [0, 1], got {strength}")
    gm = _as_model(checkpoint, device)
    if prior is not None and not isinstance(prior, LoadedPrior):
        prior = load_prior(prior, gm.sha256, device=gm.device, vae_path=gm.path)
    motion = _load_input(input, params, fps, source_domain)
    z = restyle_latents(encode_input(gm, motion), prior, target, gid, strength, steps=steps, solver=solver,
                        guidance=prior_guidance, seed=seed)
    feats = decode_latents(gm, z, target, gid, guidance)[0]
    return _finish(gm, feats, motion, target, gid, canonical, foot_lock)


@dataclass(frozen=True)
class FlowSampling:
    """Sample with the flow prior: the prior and its ODE (`generate.steps`, `generate.solver`,
    `generate.guidance`, the flow's classifier-free guidance; `generate.temperature`, the scale of its
    starting noise)."""

    prior: LoadedPrior
    steps: int
    solver: str
    guidance: float
    temperature: float = 1.0


def sample(checkpoint: str | Path | GenerationModel, params: Params, genre: int | str, domain: str = "aist", *,
           seconds: float, n: int = 1, seed: int = 0, guidance: float = 1.0,
           device: str | torch.device = "cpu", flow: FlowSampling | None = None,
           foot_lock: bool = False) -> list[GeneratedMotion]:
    """`n` motions of `seconds` at data.fps, decoded from latents of the flow prior (`flow`) or, without
    it, drawn from the VAE's prior N(0, I).

    The noise is drawn on the CPU from a generator seeded with `seed`, so a seed gives the same
    motions on any device. Samples have no input, so they stay in the canonical frame. `guidance`
    is the decoder's, as in `transfer`; motions longer than the prior's window are one ODE over
    blended windows (`generation.flow.velocity`). `foot_lock` as in `transfer`.
    """
    gid, target = _genre(genre), _domain(domain)
    fps = float(params.data.fps)
    frames = int(round(seconds * fps))
    if not (seconds > 0 and frames >= 2):
        raise ConfigError(f"--seconds must give at least 2 frames at {fps:g} fps, got {seconds}")
    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")
    gm = _as_model(checkpoint, device)
    g = torch.Generator().manual_seed(int(seed))
    if flow is None:
        z = torch.randn((n, frames, gm.model.config.d_z), generator=g)               # (n, N, Z)
    else:
        z = sample_latents(flow.prior, n, frames, DOMAINS.index(target), gid, steps=flow.steps, solver=flow.solver,
                           guidance=flow.guidance, generator=g, temperature=flow.temperature)
    feats = decode_latents(gm, z, target, gid, guidance)                              # (n, N, 263)
    source = PRIOR_SOURCE if flow is None else FLOW_SOURCE

    def joints(f: Tensor) -> Tensor:
        j = features_to_joints(f)
        return lock_feet(j, f[:, layout.CONTACTS]) if foot_lock else j

    return [GeneratedMotion(joints=joints(f).numpy().astype(np.float32),
                            features=f.numpy().astype(np.float32), fps=fps, domain=target, genre_id=gid,
                            source=source, checkpoint_sha256=gm.sha256, canonical=True) for f in feats]
