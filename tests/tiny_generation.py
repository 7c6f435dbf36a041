"""Tiny trained checkpoints and demo motions for the generation tests (built by the tests themselves).

`demo_dance(seconds)` is a procedural demo dance (canonical joints at 20 fps). `train_tiny_checkpoint`
overfits a d_model-16 VAE to a few feature sequences in a few seconds of CPU and saves it with the
training loop's own `make_checkpoint`, so the file has exactly the production layout (normaliser
stats embedded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from flowmimic.body.skeleton import N_JOINTS, default_rest_joints
from flowmimic.demo.dances import synthesize_dances
from flowmimic.demo.motion import DanceSpec
from flowmimic.features.humanml3d import joints_to_features
from flowmimic.features.normalize import Normalizer
from flowmimic.model.losses import LossWeights, vae_losses
from flowmimic.model.vae import MotionVAE, VAEConfig
from flowmimic.training.checkpoint import save_checkpoint
from flowmimic.training.checkpoint import make_checkpoint
from flowmimic.training.loop import TrainState

FPS = 20
WINDOW = 16
TINY = dict(d_model=16, n_layers=1, n_heads=2, mlp_ratio=2.0, dropout=0.0, d_z=8, style_head=True)


def demo_dance(seconds: float, genre: str = "gBR", seed: int = 0) -> torch.Tensor:
    """(T, 22, 3) float32 demo dance joints, canonical frame, at 20 fps."""
    spec = DanceSpec(genre=genre, dancer_seed=seed, advanced=True, bpm=110.0, seconds=seconds, seed=seed)
    batch = synthesize_dances([spec], default_rest_joints(torch.float32), FPS)
    return batch.sequence(0)[2][:, :N_JOINTS].to(torch.float32)


def normalizer_of(features: list[torch.Tensor]) -> Normalizer:
    allf = torch.cat(features).numpy()
    return Normalizer(allf.mean(0), np.maximum(allf.std(0), 1e-3))


def train_tiny_checkpoint(path: str | Path, features: list[torch.Tensor], domains: list[int], genres: list[int], *,
                          steps: int = 300, window: int = WINDOW, seed: int = 0) -> Path:
    """Overfit a tiny VAE to random windows of `features` ((N_i, 263) raw) and save it at `path`."""
    torch.manual_seed(seed)
    norm = normalizer_of(features)
    xs = [norm.normalize(f) for f in features]
    cfg = VAEConfig(d_in=263, n_domains=2, n_genres=10, **TINY)
    model = MotionVAE(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    weights = LossWeights(w_recon=1.0, w_contact=0.5, w_smooth=0.5, w_style=0.0, w_joints=0.0, kl_weight=1e-4,
                          kl_warmup_steps=0)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(xs), (16,), generator=g).tolist()
        starts = [int(torch.randint(xs[i].shape[0] - window + 1, (1,), generator=g)) for i in idx]
        x = torch.stack([xs[i][s:s + window] for i, s in zip(idx, starts)])
        mask = torch.ones(x.shape[:2], dtype=torch.bool)
        dom, gen = torch.tensor([domains[i] for i in idx]), torch.tensor([genres[i] for i in idx])
        loss = vae_losses(model(x, mask, dom, gen, sample=False), x, mask, gen, weights, weights.kl_weight)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    train_params = {"seq_len": window, **TINY}
    save_checkpoint(path, make_checkpoint(model, None, None, TrainState(epoch=1, step=steps), cfg.to_dict(),
                                          train_params, ("test", "test"), normalizer=norm, finished=True))
    return Path(path)



def save_tiny_prior(path: str | Path, vae_path: str | Path, d_z: int = TINY["d_z"], window: int = WINDOW,
                    seed: int = 0) -> Path:
    """A flow-prior checkpoint in the train_prior stage's layout, paired with the VAE at `vae_path` (its
    sha256), with small random weights (the commands' plumbing, not its quality, is under test)."""
    from flowmimic.generation.checkpoint import file_sha256
    from flowmimic.generation.flow import PRIOR_KIND
    from flowmimic.model.prior import FlowPrior, PriorConfig
    from flowmimic.training.checkpoint import CHECKPOINT_VERSION

    g = torch.Generator().manual_seed(seed)
    cfg = PriorConfig(d_z=d_z, d_model=16, n_layers=1, n_heads=2, mlp_ratio=2.0, dropout=0.0, n_domains=2,
                      n_genres=10, kernel=3)
    model = FlowPrior(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    save_checkpoint(path, {"version": CHECKPOINT_VERSION, "kind": PRIOR_KIND, "config": cfg.to_dict(),
                           "model": model.state_dict(), "latent_mean": torch.zeros(d_z), "latent_std": torch.ones(d_z),
                           "vae_sha256": file_sha256(vae_path), "window": window})
    return Path(path)
