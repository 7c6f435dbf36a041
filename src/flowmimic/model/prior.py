"""The conditional flow-matching prior over the VAE's per-frame latents, top-down in one file.

The VAE (`model.vae`) gives every motion frame a latent; drawing each frame's latent independently
from N(0, I) reconstructs nothing coherent (MLD measured this trade-off for long latents). This
prior learns the distribution of whole latent SEQUENCES (B, T, Z) instead, conditioned on the
capture domain and the dance genre, and the VAE's decoder turns its samples into motion.

References (facts and design, code written here):
  - Flow matching (Lipman et al., "Flow Matching for Generative Modeling", ICLR 2023) and rectified
    flow (Liu et al., "Flow Straight and Fast", ICLR 2023): the straight path
    x_t = (1 - t) x0 + t x1 from noise x0 ~ N(0, I) (t = 0) to data x1 (t = 1); the network regresses
    the path's constant velocity x1 - x0 (mean squared error), and sampling integrates the ODE
    dx/dt = v(x, t) from t = 0 to 1 (`generation.flow`).
  - Logit-normal time sampling (Esser et al., "Scaling Rectified Flow Transformers for
    High-Resolution Image Synthesis", 2024): t = sigmoid(n), n ~ N(0, 1), puts more training on the
    middle of the path, where the velocity is hardest to predict (`prior.time_sampling`).
  - adaLN-zero transformer blocks (Peebles & Xie, "Scalable Diffusion Models with Transformers",
    2023): reused from `model.vae` (`Block`, `FinalLayer`, `modulate`), conditioned here on the
    flow time (sinusoidal embedding + MLP, as DiT's timestep embedder) plus domain and genre.
  - Classifier-free guidance (Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022): training
    replaces the condition by a learned null condition with probability `prior.cond_dropout`, so
    sampling can extrapolate v_null + s (v_cond - v_null).
  - MLD (Chen et al., "Executing your Commands via Motion Diffusion in Latent Space", CVPR 2023):
    a generative model in a motion VAE's latent space rather than over raw poses.

Data: x1 is the VAE's posterior means (the `latents` stage), normalised per dimension by their own
train-split mean and std (`LatentStats`, stored in the prior's checkpoint together with the sha256
of the VAE checkpoint it was trained on, so a prior is never paired with another VAE).

Temporal convolutions (`prior.kernel`, `prior.out_kernel`): the input embedding reads `kernel` frames
and, when `out_kernel` > 1, a convolution over `out_kernel` frames (the identity at initialisation)
mixes the output velocities. A per-frame latent decodes to jitter when neighbouring frames carry
independent errors; letting each token see, and each velocity mix, its neighbours is what brought
the demo's flow samples from FID_k 275 (per frame) to 43 (input 7, output 3, see README).

Known frames (`prior.context_rate`): in-betweening and continuation fix some latent frames and
generate the rest. With a context rate > 0 the network has a second input, the known frames' clean
latents (zero elsewhere) and the 0/1 mask, through its own temporal convolution added to the token
embedding (a masked-context input, as Voicebox: Le et al., "Voicebox: Text-Guided Multilingual
Universal Speech Generation at Scale", NeurIPS 2023). Training hides, with probability
`context_rate`, all but a random prefix, or a random prefix and suffix, of each window and scores
the velocity on the hidden frames only (`context_mask`, `flow_matching_loss`); the other windows
train unconditional generation with an empty context. So the generated frames are planned for the
known ones from t = 0, not only pulled towards them (which is all replacement along the path can do:
the joins then jerk, `metrics/generate.json` in-betweening).

Conditioning ids: domains 0 aist, 1 mvh and the null domain `n_domains`; genres 1..10, 0 = unknown
(MVHumanNet) -- the null condition is (null domain, genre 0), one learned embedding pair.

Shapes: B batch, T frames, Z = d_z, D = d_model; t is (B,) in [0, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowmimic.model.vae import Block, ConditionEmbedder, FinalLayer, sinusoidal_embedding, sinusoidal_positions
from flowmimic.taxonomy import N_DOMAINS, N_GENRES, UNKNOWN_GENRE

TIME_SCALE = 1000.0          # t in [0, 1] is embedded as t * 1000, the range of DiT's integer timesteps
TIME_SAMPLING = ("uniform", "logit_normal")


@dataclass(frozen=True)
class PriorConfig:
    """Everything needed to rebuild a `FlowPrior` (stored in its checkpoint as a plain dict)."""

    d_z: int             # the VAE's latent size
    d_model: int
    n_layers: int
    n_heads: int
    mlp_ratio: float
    dropout: float
    n_domains: int       # real domains; id n_domains is the null domain
    n_genres: int        # genre ids 1..n_genres; 0 = unknown / null
    kernel: int = 1      # frames the input embedding reads (a 1-D convolution; 1: per frame)
    out_kernel: int = 1  # frames the output velocity mixes (a 1-D convolution after the final layer; 1: none)
    context: bool = False  # a known-frames input (latents and mask) for in-betweening and continuation

    @classmethod
    def from_params(cls, p, d_z: int, n_domains: int = N_DOMAINS, n_genres: int = N_GENRES) -> "PriorConfig":
        """Build from the `prior` section of params.yaml and the VAE's d_z."""
        return cls(d_z=d_z, d_model=p.d_model, n_layers=p.n_layers, n_heads=p.n_heads, mlp_ratio=p.mlp_ratio,
                   dropout=p.dropout, n_domains=n_domains, n_genres=n_genres, kernel=p.kernel,
                   out_kernel=p.out_kernel, context=p.context_rate > 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PriorConfig":
        names = {f.name for f in fields(cls)}
        d = {"kernel": 1, "out_kernel": 1, "context": False, **d}   # checkpoints written before these existed
        if set(d) != names:
            raise ValueError(f"prior config keys {sorted(d)} do not match PriorConfig's {sorted(names)}")
        return cls(**d)


@dataclass(frozen=True)
class LatentStats:
    """Per-dimension mean and std of the VAE's train-split posterior means: x1 = (mu - mean) / std."""

    mean: Tensor         # (Z,)
    std: Tensor          # (Z,)

    @classmethod
    def of(cls, latents: Tensor, min_std: float = 1e-4) -> "LatentStats":
        """Stats of (N, Z) latent frames (float64 sums; std floored at `min_std`)."""
        x = latents.double()
        return cls(x.mean(0).float(), x.std(0, unbiased=False).clamp(min=min_std).float())

    def normalize(self, z: Tensor) -> Tensor:
        return (z - self.mean.to(z)) / self.std.to(z)

    def denormalize(self, x: Tensor) -> Tensor:
        return x * self.std.to(x) + self.mean.to(x)


# ----------------------------------------------------------------------------- the network


class TimeEmbedder(nn.Module):
    """Flow time t (B,) in [0, 1] -> (B, D): sinusoidal embedding of t * TIME_SCALE through an MLP (DiT)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.d = d
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(sinusoidal_embedding(t * TIME_SCALE, self.d))


class FlowPrior(nn.Module):
    """Velocity network v(x_t, t | domain, genre): (B, T, Z) -> (B, T, Z).

    Args:
        config: `PriorConfig` (from params: `PriorConfig.from_params(params.prior, d_z)`; from a
            checkpoint: `PriorConfig.from_dict(ckpt["config"])`).
    """

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        assert config.d_model % config.n_heads == 0 and config.d_model % 2 == 0
        self.config = config
        self.null_domain = config.n_domains
        assert config.kernel % 2 == 1
        # Each frame's token sees its neighbours' noisy latents: local differences (the latents' own
        # velocity and acceleration) are what high-frequency errors -- jitter once decoded -- show in.
        self.embed = nn.Conv1d(config.d_z, config.d_model, config.kernel, padding=config.kernel // 2)
        # Known frames: their clean latents and the mask, read over the same neighbourhood (none: all 0).
        self.context_embed = (nn.Conv1d(config.d_z + 1, config.d_model, config.kernel, padding=config.kernel // 2)
                              if config.context else None)
        self.time = TimeEmbedder(config.d_model)
        self.cond = ConditionEmbedder(config.d_model, config.n_domains + 1, config.n_genres)   # + the null domain
        self.blocks = nn.ModuleList(Block(config.d_model, config.n_heads, config.mlp_ratio, config.dropout)
                                    for _ in range(config.n_layers))
        self.final = FinalLayer(config.d_model, config.d_z)
        assert config.out_kernel % 2 == 1
        # Built only when on (older checkpoints have none): the velocity of a frame mixes its neighbours'.
        self.out_conv = (nn.Conv1d(config.d_z, config.d_z, config.out_kernel, padding=config.out_kernel // 2)
                         if config.out_kernel > 1 else None)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        # As `MotionVAE`: Xavier linears, N(0, 0.02) embeddings, adaLN-zero modulations and a zero
        # output layer, so the untrained network predicts velocity 0 and every block is the identity.
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        for layer in (self.final.adaLN_modulation[-1], self.final.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        if self.out_conv is not None:             # starts as the identity (centre tap I, the others 0)
            nn.init.zeros_(self.out_conv.weight)
            nn.init.zeros_(self.out_conv.bias)
            with torch.no_grad():
                self.out_conv.weight[:, :, self.config.out_kernel // 2].copy_(torch.eye(self.config.d_z))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def null_condition(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """(domain, genre) ids (n,) of the null condition."""
        return (torch.full((n,), self.null_domain, dtype=torch.long, device=device),
                torch.full((n,), UNKNOWN_GENRE, dtype=torch.long, device=device))

    def forward(self, x: Tensor, t: Tensor, domain: Tensor, genre: Tensor, known: Tensor | None = None,
                known_mask: Tensor | None = None) -> Tensor:
        """x (B, T, Z) on the path at times t (B,), condition ids (B,) -> velocity (B, T, Z).

        `known` (B, T, Z) clean normalised latents where `known_mask` (B, T) is True: the context of a
        prior built with `context` (ignored where the mask is False; None: no frame known).
        """
        B, T, _ = x.shape
        c = self.time(t) + self.cond(domain, genre)                                      # (B, D)
        h = self.embed(x.transpose(1, 2)).transpose(1, 2) + sinusoidal_positions(T, c.shape[-1], x.device)  # (B, T, D)
        if self.context_embed is not None:
            m = (torch.zeros((B, T), dtype=x.dtype, device=x.device) if known_mask is None
                 else known_mask.to(x.dtype))[..., None]
            ctx = torch.cat([x.new_zeros(x.shape) if known is None else known * m, m], -1)
            h = h + self.context_embed(ctx.transpose(1, 2)).transpose(1, 2)
        elif known_mask is not None and bool(known_mask.any()):
            raise ValueError("this prior was trained without a known-frames input (prior.context_rate 0)")
        mask = torch.ones((B, T), dtype=torch.bool, device=x.device)
        for block in self.blocks:
            h = block(h, c, mask)
        v = self.final(h, c)                                                             # (B, T, Z)
        return v if self.out_conv is None else self.out_conv(v.transpose(1, 2)).transpose(1, 2)


# ----------------------------------------------------------------------------- training objective


def sample_times(n: int, kind: str, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
    """(n,) flow times: 'uniform' on [0, 1) or 'logit_normal' sigmoid(N(0, 1)) (Esser et al. 2024)."""
    if kind == "uniform":
        return torch.rand(n, generator=generator, device=device)
    if kind == "logit_normal":
        return torch.sigmoid(torch.randn(n, generator=generator, device=device))
    raise ValueError(f"unknown time sampling {kind!r}; use one of {TIME_SAMPLING}")


def drop_condition(model: FlowPrior, domain: Tensor, genre: Tensor, rate: float,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Each sample's (domain, genre) replaced by the null condition with probability `rate` (0: untouched,
    no random number drawn)."""
    if rate <= 0:
        return domain, genre
    drop = torch.rand(domain.shape, generator=generator, device=domain.device) < rate
    null_d, null_g = model.null_condition(domain.shape[0], domain.device)
    return torch.where(drop, null_d, domain), torch.where(drop, null_g, genre)


def context_mask(n: int, frames: int, rate: float, generator: torch.Generator | None = None,
                 device: torch.device | None = None) -> Tensor:
    """(n, frames) bool known-frame masks for training the context input.

    Each row is, with probability `rate`, a known prefix (continuation) or, as often, a known prefix and
    suffix (in-betweening), each side 1 .. frames // 2 - 1 frames long (at least 2 frames stay
    unknown); otherwise empty (unconditional generation).
    """
    u = torch.rand((n, 4), generator=generator, device=device)
    side = max(1, frames // 2 - 1)
    used, both = u[:, 0] < rate, u[:, 1] < 0.5
    a = 1 + (u[:, 2] * side).long().clamp(max=side - 1)
    b = torch.where(both, 1 + (u[:, 3] * side).long().clamp(max=side - 1), torch.zeros_like(a))
    k = torch.arange(frames, device=device)[None]
    return used[:, None] & ((k < a[:, None]) | (k >= frames - b[:, None]))


def flow_matching_loss(model: nn.Module, x1: Tensor, domain: Tensor, genre: Tensor, *, time_sampling: str,
                       cond_dropout: float = 0.0, context_rate: float = 0.0,
                       generator: torch.Generator | None = None) -> Tensor:
    """Conditional flow-matching loss on normalised latents x1 (B, T, Z): mean of |v(x_t, t) - (x1 - x0)|^2.

    x0 ~ N(0, I), t from `time_sampling`, x_t = (1 - t) x0 + t x1 (Lipman et al. 2023; Liu et al. 2023).
    With `context_rate` > 0 (a prior built with `context`), windows get known frames (`context_mask`)
    as the context input, and their loss is the mean over the unknown frames only.
    `model` may be a DDP wrapper of a `FlowPrior` (its `.module` draws the null condition).
    """
    prior = model.module if hasattr(model, "module") else model
    x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    t = sample_times(x1.shape[0], time_sampling, x1.device, generator)
    xt = (1 - t)[:, None, None] * x0 + t[:, None, None] * x1
    domain, genre = drop_condition(prior, domain, genre, cond_dropout, generator)
    if context_rate <= 0:
        return F.mse_loss(model(xt, t, domain, genre).float(), (x1 - x0).float())
    known = context_mask(x1.shape[0], x1.shape[1], context_rate, generator, x1.device)
    err = (model(xt, t, domain, genre, x1, known).float() - (x1 - x0).float()).pow(2).mean(-1)   # (B, T)
    scored = (~known).float()
    # Each window weighs the same, whatever share of it was known.
    return ((err * scored).sum(1) / scored.sum(1)).mean()
