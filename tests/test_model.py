"""The motion VAE: shapes, masking, adaLN-zero initialisation, conditioning, full-size parameter count."""

from __future__ import annotations

import pytest
import torch

from flowmimic.features import layout
from flowmimic.model.losses import LossWeights, vae_losses
from flowmimic.model.vae import N_DOMAINS, N_GENRES, MotionVAE, VAEConfig, modulate, sinusoidal_positions
from readme_commands import readme_command_params

B, T = 3, 8


def tiny_config(**kw) -> VAEConfig:
    base = dict(d_in=layout.DIM, d_model=16, n_layers=1, n_heads=2, mlp_ratio=2.0, dropout=0.0, d_z=8,
                n_domains=N_DOMAINS, n_genres=N_GENRES, style_head=True)
    return VAEConfig(**{**base, **kw})


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, layout.DIM, generator=g)
    x[..., layout.CONTACTS] = (x[..., layout.CONTACTS] > 0).float()
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 5:] = False                               # sample 1 has 5 real frames
    domain = torch.tensor([0, 1, 0])
    genre = torch.tensor([3, 0, 10])
    return x, mask, domain, genre


def randomised(model: MotionVAE, seed: int = 0) -> MotionVAE:
    """Move every weight off its (partly zero) initialisation so attention and adaLN matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def test_shapes_of_every_output():
    torch.manual_seed(0)
    model = MotionVAE(tiny_config())
    x, mask, domain, genre = batch()
    mu, logvar, h = model.encode(x, mask, domain)
    assert mu.shape == logvar.shape == (B, T, 8) and h.shape == (B, T, 16)
    z = model.reparameterise(mu, logvar)
    assert z.shape == (B, T, 8)
    assert model.decode(z, mask, domain, genre).shape == (B, T, layout.DIM)
    out = model(x, mask, domain, genre)
    assert out.recon.shape == (B, T, layout.DIM) and out.style_logits.shape == (B, N_GENRES)
    rec = model.reconstruct(x, mask, domain, genre)
    assert rec.shape == (B, T, layout.DIM)
    s = model.sample(2, 11, domain=1, genre=0, generator=torch.Generator().manual_seed(1))
    assert s.shape == (2, 11, layout.DIM)
    assert MotionVAE(tiny_config(style_head=False))(x, mask, domain, genre).style_logits is None


def test_finite_loss_and_backward_reach_every_parameter():
    torch.manual_seed(0)
    model = MotionVAE(tiny_config(dropout=0.1)).train()
    x, mask, domain, genre = batch()
    w = LossWeights(w_recon=1, w_contact=0.5, w_smooth=0.5, w_style=0.1, w_joints=0.0, kl_weight=1e-3, kl_warmup_steps=10)
    losses = vae_losses(model(x, mask, domain, genre), x, mask, genre, w, kl_weight=1e-3)
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_padding_mask_masks():
    model = randomised(MotionVAE(tiny_config()))
    x, mask, domain, genre = batch()
    out = model(x, mask, domain, genre)
    x2 = x.clone()
    x2[1, 5:] = torch.randn(3, layout.DIM) * 100
    x2[1, 6] = float("nan")                           # even NaN in padding must not leak
    out2 = model(x2, mask, domain, genre)
    assert torch.equal(out.mu, out2.mu) and torch.equal(out.logvar, out2.logvar)
    assert torch.equal(out.recon, out2.recon) and torch.equal(out.style_logits, out2.style_logits)
    # ... while a real frame does reach the others (attention is active): the test can fail.
    x3 = x.clone()
    x3[1, 4] += 1.0
    assert not torch.allclose(model(x3, mask, domain, genre).mu[1, 0], out.mu[1, 0])


def test_adaln_zero_blocks_are_identity_and_decoder_starts_at_zero():
    torch.manual_seed(0)
    model = MotionVAE(tiny_config(n_layers=2)).eval()
    x, mask, domain, genre = batch()
    h = torch.randn(B, T, 16)
    c = torch.randn(B, 16)
    for block in [*model.encoder.blocks, *model.decoder.blocks]:
        assert torch.equal(block(h, c, mask), h)
    assert torch.equal(model(x, mask, domain, genre).recon, torch.zeros(B, T, layout.DIM))


def test_modulate_and_positions():
    x, shift, scale = torch.ones(2, 3, 4), torch.full((2, 4), 0.5), torch.full((2, 4), 1.0)
    assert torch.equal(modulate(x, shift, scale), torch.full((2, 3, 4), 2.5))
    pe = sinusoidal_positions(5, 6)
    assert pe.shape == (5, 6)
    assert torch.allclose(pe[0], torch.tensor([0.0, 1.0] * 3))             # sin 0, cos 0
    assert torch.allclose(pe[3, :2], torch.tensor([torch.sin(torch.tensor(3.0)), torch.cos(torch.tensor(3.0))]))


def test_encoder_ignores_genre_decoder_uses_it():
    model = randomised(MotionVAE(tiny_config()))
    x, mask, domain, genre = batch()
    a, b = model(x, mask, domain, genre), model(x, mask, domain, torch.tensor([7, 0, 2]))
    assert torch.equal(a.mu, b.mu) and torch.equal(a.style_logits, b.style_logits)
    assert not torch.allclose(a.recon, b.recon)
    c = model(x, mask, torch.tensor([1, 0, 1]), genre)
    assert not torch.allclose(a.mu, c.mu)                                   # the encoder sees the domain


def test_reconstruct_sample_contacts_are_probabilities_and_seeded():
    model = randomised(MotionVAE(tiny_config()))
    s1 = model.sample(2, 6, 0, 4, generator=torch.Generator().manual_seed(3))
    s2 = model.sample(2, 6, torch.tensor(0), torch.tensor([4, 4]), generator=torch.Generator().manual_seed(3))
    assert torch.equal(s1, s2)
    c = s1[..., layout.CONTACTS]
    assert ((c >= 0) & (c <= 1)).all()
    x, mask, domain, genre = batch()
    r1 = model.reconstruct(x, mask, domain, genre)
    assert torch.equal(r1, model.reconstruct(x, mask, domain, genre))        # posterior mean: deterministic


def test_config_round_trip():
    cfg = tiny_config()
    assert VAEConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        VAEConfig.from_dict({**cfg.to_dict(), "typo": 1})


def analytic_param_count(d: int, L: int, d_z: int, mlp_ratio: float, n_domains: int, n_genres: int,
                         style_head: bool, d_in: int = layout.DIM) -> int:
    h = int(d * mlp_ratio)
    block = (d * 3 * d + 3 * d) + (d * d + d) + (d * h + h + h * d + d) + (d * 6 * d + 6 * d)
    cond_mlp = 2 * (d * d + d)
    encoder = (d_in * d + d) + (n_domains * d + cond_mlp) + L * block + 2 * d + 2 * (d * d_z + d_z)
    final = (d * 2 * d + 2 * d) + (d * d_in + d_in)
    decoder = (d_z * d + d) + (n_domains * d + (n_genres + 1) * d + cond_mlp) + L * block + final
    style = (2 * d + d * n_genres + n_genres) if style_head else 0
    return encoder + decoder + style


@pytest.mark.parametrize("cfg", [tiny_config(), tiny_config(style_head=False, n_layers=3, mlp_ratio=4.0)])
def test_param_count_tiny(cfg):
    expected = analytic_param_count(cfg.d_model, cfg.n_layers, cfg.d_z, cfg.mlp_ratio, cfg.n_domains,
                                    cfg.n_genres, cfg.style_head)
    assert MotionVAE(cfg).num_params() == expected


def test_full_seed_configuration_size():
    """The seed's model as README's one command makes it: d_model 512, 8 layers each, 8 heads, d_z 256."""
    params, overrides = readme_command_params("The seed's full configuration")
    assert sum(section == "train" for section, _ in overrides) >= 10
    p = params.train
    assert (p.d_model, p.n_layers, p.n_heads, p.d_z, p.seq_len, p.dropout, p.w_joints) == (512, 8, 8, 256, 120, 0.1, 0.0)
    cfg = VAEConfig.from_train_params(p)
    torch.manual_seed(0)
    model = MotionVAE(cfg).eval()
    n = model.num_params()
    assert n == analytic_param_count(512, 8, 256, 4.0, N_DOMAINS, N_GENRES, True) == 77_875_473
    x, mask, domain, genre = batch()
    out = model(x[:1, :4], mask[:1, :4], domain[:1], genre[:1])
    assert out.recon.shape == (1, 4, layout.DIM) and out.mu.shape == (1, 4, 256)
