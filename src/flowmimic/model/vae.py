"""The multi-domain conditional motion VAE, top-down in one file.

A transformer VAE over 263-D HumanML3D feature windows with one latent per frame, conditioned on the
capture domain (AIST++ / MVHumanNet) and the dance style (AIST++ genre, 0 = unknown).

References (facts and design, code written here):
  - DiT (Peebles & Xie, "Scalable Diffusion Models with Transformers", 2023): adaLN-zero blocks --
    the conditioning vector regresses shift/scale/gate for attention and MLP, LayerNorms carry no
    affine parameters, and the modulation and output layers start at zero so every block is the
    identity at initialisation.
  - MLD (Chen et al., "Executing your Commands via Motion Diffusion in Latent Space", 2023): the
    transformer motion VAE with a Gaussian latent, reparameterisation and a KL term.

Conditioning, and why it differs between the halves: the ENCODER sees the domain only; the DECODER
sees domain + genre. The optional style head classifies the genre from the encoder's pooled states;
if the encoder were modulated by the genre embedding, the head could read the label straight from
the adaLN vector and its accuracy would measure nothing about the motion.

Shapes: B batch, T frames, D = d_model, Z = d_z. `mask` is (B, T) bool, True on real frames; padded
frames are ignored as attention keys and zeroed at the encoder input, so they change no real frame.
The decoder emits contact dims [259:263] as logits; `to_features` turns them into probabilities.

Optional, off by default: an adversarial genre critic on the posterior means (`genre_critic`), which
pushes the genre out of z so that the decoder's label decides it (`model.genre_control`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowmimic.features import layout
from flowmimic.model.genre_control import GenreCritic, reverse_gradient
from flowmimic.taxonomy import N_DOMAINS, N_GENRES   # domains 0 aist, 1 mvh; genres 1..10 (0 = unknown)


@dataclass(frozen=True)
class VAEConfig:
    """Everything needed to rebuild a `MotionVAE` (stored in checkpoints as a plain dict)."""

    d_in: int            # feature size (263)
    d_model: int
    n_layers: int        # per encoder and per decoder
    n_heads: int
    mlp_ratio: float
    dropout: float
    d_z: int             # latent size per frame
    n_domains: int
    n_genres: int        # genre ids 1..n_genres; 0 = unknown
    style_head: bool
    genre_critic: bool = False   # adversarial genre critic on mu (`model.genre_control`); absent in older checkpoints

    @classmethod
    def from_train_params(cls, p, n_domains: int = N_DOMAINS, n_genres: int = N_GENRES) -> "VAEConfig":
        """Build from the `train` section of params.yaml (`flowmimic.params.TrainParams`)."""
        return cls(d_in=layout.DIM, d_model=p.d_model, n_layers=p.n_layers, n_heads=p.n_heads,
                   mlp_ratio=p.mlp_ratio, dropout=p.dropout, d_z=p.d_z, n_domains=n_domains,
                   n_genres=n_genres, style_head=p.style_head, genre_critic=p.w_genre_adv > 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VAEConfig":
        names = {f.name for f in fields(cls)}
        d = {"genre_critic": False, **d}          # checkpoints written before the critic existed
        if set(d) != names:
            raise ValueError(f"model config keys {sorted(d)} do not match VAEConfig's {sorted(names)}")
        return cls(**d)


# ----------------------------------------------------------------------------- building blocks


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN: x (B, T, D) scaled and shifted per sample by (B, D) vectors."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def sinusoidal_embedding(values: Tensor, dim: int) -> Tensor:
    """Sine/cosine encodings of real values (Vaswani et al. 2017): (n,) -> (n, dim), dim even.

    Frame positions use it with 0, 1, 2, ...; the flow prior (`model.prior`) with its scaled flow time.
    """
    pos = values.to(torch.float32)[:, None]                                             # (n, 1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=values.device) * (-math.log(10000.0) / dim))
    angles = pos * freq                                                                 # (n, dim/2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)                 # (n, dim) sin,cos interleaved


def sinusoidal_positions(n: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Transformer sine/cosine frame encodings (Vaswani et al. 2017): (n, dim), dim even."""
    return sinusoidal_embedding(torch.arange(n, dtype=torch.float32, device=device), dim)


class Attention(nn.Module):
    """Multi-head self-attention over frames; padded frames are masked out as keys."""

    def __init__(self, d: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, D/H)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :],            # keys: (B, 1, 1, T)
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))                                      # (B, T, D)


class MLP(nn.Module):
    def __init__(self, d: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.fc2(F.gelu(self.fc1(x), approximate="tanh")))


class Block(nn.Module):
    """Transformer block with adaLN-zero conditioning (DiT): c regresses shift/scale/gate x 2."""

    def __init__(self, d: int, n_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(d, n_heads, dropout)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(d, int(d * mlp_ratio), dropout)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def forward(self, x: Tensor, c: Tensor, mask: Tensor) -> Tensor:
        """x (B, T, D), c (B, D), mask (B, T) -> (B, T, D)."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa), mask)
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class ConditionEmbedder(nn.Module):
    """domain (B,) [+ genre (B,)] -> conditioning vector c (B, D): summed embeddings through an MLP."""

    def __init__(self, d: int, n_domains: int, n_genres: int | None) -> None:
        super().__init__()
        self.domain = nn.Embedding(n_domains, d)
        self.genre = nn.Embedding(n_genres + 1, d) if n_genres is not None else None   # +1: id 0 = unknown
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))

    def forward(self, domain: Tensor, genre: Tensor | None = None) -> Tensor:
        e = self.domain(domain)                                                         # (B, D)
        if self.genre is not None:
            e = e + self.genre(genre)
        return self.mlp(e)                                                              # (B, D)


class Encoder(nn.Module):
    """Motion (B, T, 263) -> states (B, T, D) and per-frame posterior mu, logvar (B, T, Z).

    Conditioned on the domain only (see the module docstring).
    """

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(cfg.d_in, cfg.d_model)
        self.cond = ConditionEmbedder(cfg.d_model, cfg.n_domains, n_genres=None)
        self.blocks = nn.ModuleList(Block(cfg.d_model, cfg.n_heads, cfg.mlp_ratio, cfg.dropout)
                                    for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.mu = nn.Linear(cfg.d_model, cfg.d_z)
        self.logvar = nn.Linear(cfg.d_model, cfg.d_z)

    def forward(self, x: Tensor, mask: Tensor, domain: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, T, _ = x.shape
        c = self.cond(domain)                                                           # (B, D)
        x = torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))  # padding -> 0
        h = self.embed(x) + sinusoidal_positions(T, c.shape[-1], x.device)               # (B, T, D)
        for block in self.blocks:
            h = block(h, c, mask)
        h = self.norm(h)                                                                # (B, T, D)
        return h, self.mu(h), self.logvar(h)                                            # (B, T, D), 2 x (B, T, Z)


class FinalLayer(nn.Module):
    """DiT's output layer: adaLN shift/scale, then a (zero-initialised) projection to the features."""

    def __init__(self, d: int, d_out: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.linear = nn.Linear(d, d_out)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class Decoder(nn.Module):
    """Latents (B, T, Z) -> features (B, T, 263) (contacts as logits), conditioned on domain + genre."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(cfg.d_z, cfg.d_model)
        self.cond = ConditionEmbedder(cfg.d_model, cfg.n_domains, n_genres=cfg.n_genres)
        self.blocks = nn.ModuleList(Block(cfg.d_model, cfg.n_heads, cfg.mlp_ratio, cfg.dropout)
                                    for _ in range(cfg.n_layers))
        self.final = FinalLayer(cfg.d_model, cfg.d_in)

    def forward(self, z: Tensor, mask: Tensor, domain: Tensor, genre: Tensor) -> Tensor:
        B, T, _ = z.shape
        c = self.cond(domain, genre)                                                    # (B, D)
        h = self.embed(z) + sinusoidal_positions(T, c.shape[-1], z.device)               # (B, T, D)
        for block in self.blocks:
            h = block(h, c, mask)
        return self.final(h, c)                                                         # (B, T, 263)


# ----------------------------------------------------------------------------- the VAE


@dataclass
class VAEOutput:
    recon: Tensor                 # (B, T, 263) normalised features, contact dims as logits
    mu: Tensor                    # (B, T, Z)
    logvar: Tensor                # (B, T, Z)
    style_logits: Tensor | None   # (B, n_genres) for genre ids 1..n_genres, None without a style head
    critic_logits: Tensor | None = None   # (B, n_genres) of the adversarial critic on mu (through gradient
                                          # reversal), None without one


def to_features(out: Tensor) -> Tensor:
    """Decoder output (..., 263) -> features: contact logits become probabilities in [0, 1]."""
    return torch.cat([out[..., layout.CONTINUOUS], torch.sigmoid(out[..., layout.CONTACTS])], dim=-1)


def _as_ids(v: int | Tensor, n: int, device: torch.device) -> Tensor:
    if isinstance(v, Tensor):
        return v.to(device=device, dtype=torch.long).expand(n) if v.ndim == 0 else v.to(device, torch.long)
    return torch.full((n,), int(v), dtype=torch.long, device=device)


class MotionVAE(nn.Module):
    """Conditional transformer VAE with a per-frame latent.

    Args:
        config: `VAEConfig` (from params: `VAEConfig.from_train_params(params.train)`; from a
            checkpoint: `VAEConfig.from_dict(ckpt["config"])`).
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        assert config.d_model % config.n_heads == 0 and config.d_model % 2 == 0
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.style_head = (nn.Sequential(nn.LayerNorm(config.d_model), nn.Linear(config.d_model, config.n_genres))
                           if config.style_head else None)
        # Built last, and only when on: the other modules' initial weights stay the seed's.
        self.critic = GenreCritic(config.d_z, config.d_model, config.n_genres) if config.genre_critic else None
        self.initialize_weights()

    def initialize_weights(self) -> None:
        # Transformer default (as DiT): Xavier-uniform linear weights, zero biases; embeddings N(0, 0.02).
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
        # adaLN-zero: each block's shift/scale/gate regress to 0, so every block starts as the identity.
        for block in [*self.encoder.blocks, *self.decoder.blocks]:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        # Zero output layer: the first reconstruction is 0, i.e. the dataset mean in normalised space
        # (contact logits 0 = probability 0.5).
        nn.init.zeros_(self.decoder.final.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.decoder.final.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.decoder.final.linear.weight)
        nn.init.zeros_(self.decoder.final.linear.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(self, x: Tensor, mask: Tensor, domain: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, T, 263) normalised, mask (B, T), domain (B,) -> mu, logvar (B, T, Z), states (B, T, D)."""
        h, mu, logvar = self.encoder(x, mask, domain)
        return mu, logvar, h

    @staticmethod
    def reparameterise(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I): (B, T, Z)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: Tensor, mask: Tensor, domain: Tensor, genre: Tensor) -> Tensor:
        """z (B, T, Z), mask (B, T), domain/genre (B,) -> (B, T, 263), contacts as logits."""
        return self.decoder(z, mask, domain, genre)

    def classify_style(self, h: Tensor, mask: Tensor) -> Tensor | None:
        """Encoder states (B, T, D) -> genre logits (B, n_genres) over the masked mean of the frames."""
        if self.style_head is None:
            return None
        m = mask[..., None].to(h.dtype)                                                 # (B, T, 1)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)                               # (B, D)
        return self.style_head(pooled)                                                  # (B, n_genres)

    def forward(self, x: Tensor, mask: Tensor, domain: Tensor, genre: Tensor,
                sample: bool | None = None) -> VAEOutput:
        """x (B, T, 263) normalised, mask (B, T) bool, domain/genre (B,) long.

        `sample` (default: in training mode only) decodes a reparameterised z instead of mu.
        """
        mu, logvar, h = self.encode(x, mask, domain)
        sample = self.training if sample is None else sample
        z = self.reparameterise(mu, logvar) if sample else mu                           # (B, T, Z)
        critic = None if self.critic is None else self.critic(reverse_gradient(mu.float()), mask)
        return VAEOutput(self.decode(z, mask, domain, genre), mu, logvar, self.classify_style(h, mask), critic)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, mask: Tensor, domain: Tensor, genre: Tensor, sample: bool = False) -> Tensor:
        """Encode and decode: (B, T, 263) normalised features with contacts as probabilities."""
        return to_features(self.forward(x, mask, domain, genre, sample=sample).recon)

    @torch.no_grad()
    def sample(self, n: int, T: int, domain: int | Tensor, genre: int | Tensor,
               generator: torch.Generator | None = None) -> Tensor:
        """Decode prior latents z ~ N(0, I): (n, T, 263) normalised features, contacts as probabilities.

        `domain` / `genre`: an id for all samples or (n,) ids; `generator` must live on the model's device.
        """
        device = next(self.parameters()).device
        z = torch.randn((n, T, self.config.d_z), generator=generator, device=device)      # (n, T, Z)
        mask = torch.ones((n, T), dtype=torch.bool, device=device)
        return to_features(self.decode(z, mask, _as_ids(domain, n, device), _as_ids(genre, n, device)))
