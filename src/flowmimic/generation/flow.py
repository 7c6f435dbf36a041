"""Sampling the flow prior (`model.prior`): ODE integration, guidance, known frames, SDEdit edits.

Everything here works on RAW VAE latents (the encoder's posterior means, (B, T, Z)); the prior's own
normalisation (`LatentStats`) is applied inside. Decoding latents to motion is `generation.core`.

  load_prior       a prior checkpoint (weights_only), refused when it was trained on another VAE
  sample_latents   n latent sequences from noise: Euler or midpoint steps over t = 0 -> 1
  reinpaint_seams  a second, low-noise pass over the frames next to the known ones (in-betweening joins)
  edit_latents     SDEdit (Meng et al., "SDEdit: Guided Image Synthesis and Editing with Stochastic
                   Differential Equations", ICLR 2022) on the straight path: from source latents z,
                   start at t0 = 1 - strength at x_t0 = (1 - t0) noise + t0 normalised(z) and
                   integrate to t = 1 under the TARGET condition; strength 1 is a fresh sample,
                   small strengths keep more of z (cross-domain style transfer)

Classifier-free guidance (Ho & Salimans 2022): v = v_null + s (v_cond - v_null), both halves in one
batched call; s = 1 evaluates the conditional velocity only (one call).

Known frames (in-betweening, continuation) are imposed two ways at once. REPLACEMENT along the path:
at every evaluation of the velocity, the known frames of the state are overwritten by where the
straight path from the same noise would put them, x_t = (1 - t) x0 + t x1_known, and at t = 1 by
x1_known itself -- on a straight path that is exactly the state the ODE would be in had it started
from that noise and ended at the known latents, which is also what training shows the network. And,
for a prior trained with a context input (`prior.context_rate` > 0, `model.prior`), the clean known
latents and their mask go to the network at every step, so the unknown frames are planned for them
from t = 0: replacement alone only lets the model react to a context it cannot see clean until late
in the path, and its joins jerk (the generate stage's in-betweening metrics measure both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from flowmimic.errors import ConfigError, DataError
from flowmimic.generation.windows import overlap_add, overlap_of, split_windows, window_starts
from flowmimic.model.prior import FlowPrior, LatentStats, PriorConfig
from flowmimic.training.checkpoint import _short_reason, load_checkpoint

SOLVERS = ("euler", "midpoint")
PRIOR_KIND = "flow_prior"


@dataclass(frozen=True)
class LoadedPrior:
    """A trained prior ready to sample (load it with `load_prior`)."""

    model: FlowPrior             # eval mode, on `device`
    stats: LatentStats           # normalisation of the latents it was trained on
    window: int                  # training window length (prior.seq_len), latent frames
    vae_sha256: str              # the VAE checkpoint its latents came from
    path: str
    device: torch.device


def load_prior(path: str | Path, vae_sha256: str | None = None, device: str | torch.device = "cpu",
               vae_path: str | Path | None = None) -> LoadedPrior:
    """Rebuild the prior from its checkpoint (EMA weights); `DataError` naming `path` if it is unusable
    or, given `vae_sha256`, was trained on another VAE (`vae_path` names that VAE in the message)."""
    path, device = Path(path), torch.device(device)
    if not path.exists():
        raise DataError(path, "flow prior checkpoint not found (train it: `dvc repro train_prior`)", "missing")
    ckpt = load_checkpoint(path, map_location=device)
    if ckpt.get("kind") != PRIOR_KIND:
        raise DataError(path, "not a flow-prior checkpoint (run `flowmimic train-prior`)", "invalid")
    try:
        model = FlowPrior(PriorConfig.from_dict(ckpt["config"]))
        model.load_state_dict(ckpt["model"])
        stats = LatentStats(ckpt["latent_mean"].float().cpu(), ckpt["latent_std"].float().cpu())
        window, trained_on = int(ckpt["window"]), str(ckpt["vae_sha256"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise DataError(path, f"checkpoint does not rebuild the prior ({_short_reason(e)})", "invalid") from e
    if vae_sha256 is not None and trained_on != vae_sha256:
        raise DataError(path, f"was trained on the latents of another VAE (sha256 {trained_on[:12]}), not of "
                        f"{vae_path or 'this VAE'} ({vae_sha256[:12]}); re-run `flowmimic latents` and "
                        "`flowmimic train-prior`", "vae_mismatch")
    return LoadedPrior(model.to(device).eval(), stats, window, trained_on, str(path), device)


def _ids(value: int | Tensor | list[int], n: int, device: torch.device) -> Tensor:
    ids = torch.as_tensor(value, dtype=torch.long, device=device)
    ids = ids.expand(n) if ids.ndim == 0 else ids
    if ids.shape != (n,):
        raise ValueError(f"need one id or {n}, got {tuple(ids.shape)}")
    return ids


def velocity(prior: LoadedPrior, x: Tensor, t: float, domain: Tensor, genre: Tensor, guidance: float,
             known: Tensor | None = None, known_mask: Tensor | None = None) -> Tensor:
    """Guided velocity at state x (B, T, Z) (normalised) and time t (see the module docstring).

    A state longer than the prior's window is evaluated in half-overlapping windows whose velocities
    are blended with the VAE's taper (`generation.windows.overlap_add`), at every step: one ODE for the
    whole sequence, each frame's velocity a convex mix of the windows that see it (the MultiDiffusion
    idea, Bar-Tal et al., ICML 2023), so a long edit or sample has no seam at the window edges.
    `known` / `known_mask` (B, T, Z) / (B, T): the context input of a prior that reads one (else unused).
    """
    b, n, _ = x.shape
    if not prior.model.config.context:
        known = known_mask = None
    if n <= prior.window:
        return _window_velocity(prior, x, t, domain, genre, guidance, known, known_mask)
    overlap = overlap_of(prior.window)
    starts = window_starts(n, prior.window, overlap)
    k = len(starts)

    def split(v: Tensor) -> Tensor:
        return None if v is None else split_windows(v, starts, prior.window).flatten(0, 1)   # (B*W, L, ...)

    vw = _window_velocity(prior, split(x), t, domain.repeat_interleave(k), genre.repeat_interleave(k), guidance,
                          split(known), split(known_mask))
    return overlap_add(vw.unflatten(0, (b, k)), starts, n, overlap)


def _window_velocity(prior: LoadedPrior, x: Tensor, t: float, domain: Tensor, genre: Tensor,
                     guidance: float, known: Tensor | None = None, known_mask: Tensor | None = None) -> Tensor:
    b = x.shape[0]
    tt = torch.full((b,), float(t), device=x.device)
    context = () if known is None else (known, known_mask)
    if guidance == 1.0:
        return prior.model(x, tt, domain, genre, *context)
    null_d, null_g = prior.model.null_condition(b, x.device)
    both = prior.model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([domain, null_d]), torch.cat([genre, null_g]),
                       *(torch.cat([v, v]) for v in context))
    cond, uncond = both.chunk(2)
    return uncond + guidance * (cond - uncond)


def _check(steps: int, solver: str, guidance: float) -> None:
    if steps < 1:
        raise ConfigError(f"flow sampling needs at least 1 step, got {steps}")
    if solver not in SOLVERS:
        raise ConfigError(f"unknown ODE solver {solver!r}; use one of {', '.join(SOLVERS)}")
    if not guidance >= 0:
        raise ConfigError(f"guidance must be >= 0, got {guidance}")


@torch.no_grad()
def integrate(prior: LoadedPrior, x: Tensor, t0: float, domain: Tensor, genre: Tensor, *, steps: int, solver: str,
              guidance: float, known: Tensor | None = None, known_mask: Tensor | None = None,
              noise: Tensor | None = None) -> Tensor:
    """ODE from state x (normalised) at t0 to t = 1 in `steps` equal steps; returns the state at t = 1.

    `known` (B, T, Z) normalised latents and `known_mask` (B, T) bool impose frames by replacement,
    with `noise` the x0 their straight paths start from.
    """
    _check(steps, solver, guidance)

    def replace(state: Tensor, t: float) -> Tensor:
        if known is None:
            return state
        on_path = known if t >= 1.0 else (1 - t) * noise + t * known
        return torch.where(known_mask[..., None], on_path, state)

    dt = (1.0 - t0) / steps
    for i in range(steps):
        t = t0 + i * dt
        x = replace(x, t)
        v = velocity(prior, x, t, domain, genre, guidance, known, known_mask)
        if solver == "midpoint":
            xm = replace(x + 0.5 * dt * v, t + 0.5 * dt)
            v = velocity(prior, xm, t + 0.5 * dt, domain, genre, guidance, known, known_mask)
        x = x + dt * v
    return replace(x, 1.0)


def _noise(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal noise drawn on the CPU (a seed gives the same samples on any device)."""
    return torch.randn(shape, generator=generator).to(device)


def sample_latents(prior: LoadedPrior, n: int, frames: int, domain: int | Tensor | list[int],
                   genre: int | Tensor | list[int], *, steps: int, solver: str = "midpoint", guidance: float = 1.0,
                   generator: torch.Generator | None = None, known: Tensor | None = None,
                   known_mask: Tensor | None = None, temperature: float = 1.0) -> Tensor:
    """`n` raw latent sequences (n, frames, Z) on the CPU from noise, under (domain, genre) ids.

    `known` (n, frames, Z) RAW latents with `known_mask` (n, frames) bool: frames to keep (in-betweening,
    continuation; see the module docstring); the output equals `known` there. `temperature` scales the
    starting noise x0 ~ N(0, T^2 I) (1: the distribution the prior was trained from; see `generate.temperature`).
    """
    if n < 1 or frames < 1:
        raise ConfigError(f"need at least one sample of at least one frame, got n={n}, frames={frames}")
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    dev, z_dim = prior.device, prior.model.config.d_z
    x0 = _noise((n, frames, z_dim), generator, dev) * float(temperature)
    k = None
    if known is not None:
        if known.shape != (n, frames, z_dim) or known_mask is None or known_mask.shape != (n, frames):
            raise ValueError(f"known latents must be ({n}, {frames}, {z_dim}) with a ({n}, {frames}) mask")
        k, known_mask = prior.stats.normalize(known.to(dev).float()), known_mask.to(dev)
    x1 = integrate(prior, x0, 0.0, _ids(domain, n, dev), _ids(genre, n, dev), steps=steps, solver=solver,
                   guidance=guidance, known=k, known_mask=known_mask, noise=x0)
    out = prior.stats.denormalize(x1).cpu()
    if known is not None:
        out = torch.where(known_mask.cpu()[..., None], known.float().cpu(), out)     # exact, not through the stats
    return out


def edit_latents(prior: LoadedPrior, z: Tensor, domain: int | Tensor | list[int], genre: int | Tensor | list[int],
                 strength: float, steps: int, solver: str = "midpoint", guidance: float = 1.0,
                 generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
    """SDEdit: source RAW latents z (B, T, Z) re-generated under a target (domain, genre); (B, T, Z) on the CPU.

    strength s in (0, 1]: start at t0 = 1 - s from x_t0 = (1 - t0) noise + t0 normalised(z) and take
    `steps` steps to t = 1 (s = 1: a fresh sample that ignores z; small s: close to z). Noise comes
    from `generator` on the CPU, or is `noise` (B, T, Z) when given.
    """
    if not 0.0 < strength <= 1.0:
        raise ConfigError(f"edit strength must be in (0, 1], got {strength}")
    if z.ndim != 3 or z.shape[-1] != prior.model.config.d_z:
        raise ValueError(f"latents must be (B, T, {prior.model.config.d_z}), got {tuple(z.shape)}")
    dev, b = prior.device, z.shape[0]
    t0 = 1.0 - float(strength)
    x1 = prior.stats.normalize(z.to(dev).float())
    if noise is None:
        noise = _noise(tuple(z.shape), generator, dev)
    elif noise.shape != z.shape:
        raise ValueError(f"noise must be {tuple(z.shape)}, got {tuple(noise.shape)}")
    x = (1 - t0) * noise.to(dev).float() + t0 * x1
    out = integrate(prior, x, t0, _ids(domain, b, dev), _ids(genre, b, dev), steps=steps, solver=solver,
                    guidance=guidance)
    return prior.stats.denormalize(out).cpu()


def reinpaint_seams(prior: LoadedPrior, z: Tensor, known_mask: Tensor, domain: int | Tensor | list[int],
                    genre: int | Tensor | list[int], *, strength: float, release: int, steps: int,
                    solver: str = "midpoint", guidance: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """In-painted RAW latents z (B, T, Z) with their seams re-generated at low noise; (B, T, Z) on the CPU.

    A decoded in-painting jerks where known and generated frames meet (the generate stage's join
    acceleration): each side is a plausible latent, but the decoder turns their small mismatch into
    a jump of the limbs. This pass takes the whole result back to noise level `strength` (SDEdit's
    harmonisation, Meng et al. 2022) and integrates to t = 1 again in ceil(steps * strength) steps,
    with the known frames imposed as before EXCEPT the `release` frames next to each unknown run,
    which the prior may now change to meet the generated ones. Frames kept exactly: the known ones
    more than `release` frames from an unknown one. strength 0 or release 0: z unchanged.
    """
    if strength <= 0 or release <= 0:
        return z
    if not strength <= 1.0:
        raise ConfigError(f"seam strength must be in [0, 1], got {strength}")
    dev, b = prior.device, z.shape[0]
    unknown = (~known_mask).float()[:, None]                                              # (B, 1, T)
    near = F.max_pool1d(unknown, 2 * release + 1, stride=1, padding=release)[:, 0] > 0
    keep = known_mask & ~near
    x1 = prior.stats.normalize(z.to(dev).float())
    noise = _noise(tuple(z.shape), generator, dev)
    t0 = 1.0 - float(strength)
    x = (1 - t0) * noise + t0 * x1
    out = integrate(prior, x, t0, _ids(domain, b, dev), _ids(genre, b, dev), steps=max(1, math.ceil(steps * strength)),
                    solver=solver, guidance=guidance, known=x1, known_mask=keep.to(dev), noise=noise)
    return torch.where(keep[..., None], z.float().cpu(), prior.stats.denormalize(out).cpu())
