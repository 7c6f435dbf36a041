"""Making the genre label matter: gradient reversal, the adversarial critic, condition dropout, guidance."""

from __future__ import annotations

import torch

from flowmimic.model.genre_control import (NULL_GENRE, adversarial_genre_loss, drop_labels, guided_decode,
                                           reverse_gradient)
from flowmimic.model.losses import LossWeights, training_objective, vae_losses
from flowmimic.model.vae import MotionVAE, VAEConfig

CFG = dict(d_in=263, d_model=16, n_layers=1, n_heads=2, mlp_ratio=2.0, dropout=0.0, d_z=8, n_domains=2,
           n_genres=10, style_head=True)
W = LossWeights(w_recon=1.0, w_contact=0.5, w_smooth=0.5, w_style=0.1, w_joints=0.0, kl_weight=1e-4,
                kl_warmup_steps=0, w_genre_adv=1.0)


def _batch(b: int = 6, t: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, 263, generator=g)
    x[..., 259:] = (x[..., 259:] > 0).float()
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[0, 8:] = False
    domain = torch.tensor([0, 0, 0, 1, 0, 1][:b])
    genre = torch.tensor([1, 4, 10, 0, 7, 0][:b])
    return x, mask, domain, genre


def test_gradient_reversal_is_the_identity_forward_and_flips_the_gradient():
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(5, 3)
    y = reverse_gradient(x, 0.5)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.5 * w)


def test_critic_descends_while_the_encoder_ascends():
    torch.manual_seed(0)
    model = MotionVAE(VAEConfig(**CFG, genre_critic=True))
    x, mask, domain, genre = _batch()
    out = model(x, mask, domain, genre, sample=False)
    assert out.critic_logits.shape == (6, 10)
    loss = adversarial_genre_loss(out.critic_logits, genre)
    loss.backward()
    through_grl = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    # The same loss without the reversal: the critic's gradients agree, the encoder's are negated.
    mu = model.encode(x, mask, domain)[0]
    adversarial_genre_loss(model.critic(mu.float(), mask), genre).backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    critic = [n for n in plain if n.startswith("critic.")]
    encoder = [n for n in plain if n.startswith("encoder.") and plain[n].abs().max() > 0]
    assert critic and encoder
    for n in critic:
        assert torch.allclose(through_grl[n], plain[n], atol=1e-6)
    for n in encoder:
        assert torch.allclose(through_grl[n], -plain[n], atol=1e-6), n
    assert not any(n.startswith("decoder.") for n in plain)        # the decoder takes no part in the game


def test_adversarial_loss_ignores_unknown_genres_and_is_zero_without_any():
    logits = torch.randn(4, 10)
    genre = torch.tensor([3, 0, 5, 0])
    expected = torch.nn.functional.cross_entropy(logits[[0, 2]], torch.tensor([2, 4]))
    assert torch.allclose(adversarial_genre_loss(logits, genre), expected)
    assert adversarial_genre_loss(logits, torch.zeros(4, dtype=torch.long)).item() == 0.0


def test_the_critic_term_is_trained_but_not_in_the_validation_total():
    torch.manual_seed(0)
    model = MotionVAE(VAEConfig(**CFG, genre_critic=True))
    x, mask, domain, genre = _batch()
    losses = vae_losses(model(x, mask, domain, genre, sample=False), x, mask, genre, W, W.kl_weight)
    assert losses["genre_adv"] > 0
    without = {**losses, "genre_adv": torch.tensor(0.0)}
    assert torch.allclose(training_objective(losses, W), losses["total"] + losses["genre_adv"])
    from flowmimic.model.losses import weighted_total

    assert torch.allclose(weighted_total(without, W, W.kl_weight), losses["total"])


def test_critic_off_builds_the_seeds_model_and_old_configs_load():
    torch.manual_seed(0)
    off = MotionVAE(VAEConfig(**CFG, genre_critic=False))
    torch.manual_seed(0)
    old = MotionVAE(VAEConfig.from_dict(dict(CFG)))          # a config dict written before the critic existed
    assert old.critic is None and off.critic is None
    a, b = off.state_dict(), old.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x, mask, domain, genre = _batch()
    out = off(x, mask, domain, genre, sample=False)
    assert out.critic_logits is None
    assert vae_losses(out, x, mask, genre, W, W.kl_weight)["genre_adv"].item() == 0.0


def test_drop_labels_nulls_known_labels_at_the_rate():
    genre = torch.randint(1, 11, (20000,))
    genre[::10] = 0
    g = torch.Generator().manual_seed(0)
    dropped = drop_labels(genre, 0.3, g)
    changed = dropped != genre
    assert torch.all(dropped[changed] == NULL_GENRE) and torch.all(dropped[~changed] == genre[~changed])
    known = genre != 0
    assert abs(float((dropped[known] == NULL_GENRE).float().mean()) - 0.3) < 0.015
    assert torch.all(dropped[~known] == 0)


def test_drop_labels_off_draws_nothing():
    genre = torch.tensor([1, 2, 3])
    state = torch.get_rng_state()
    assert drop_labels(genre, 0.0) is genre
    assert torch.equal(torch.get_rng_state(), state)               # the seed's RNG stream is untouched


def _toy_decoder(calls: list[int]):
    table = torch.randn(11, 4, generator=torch.Generator().manual_seed(1))

    def decode(z, mask, domain, genre):
        calls.append(z.shape[0])
        return z.sum(-1, keepdim=True) + table[genre][:, None, :] + domain[:, None, None]

    return decode


def test_guidance_one_is_plain_decoding_in_one_call():
    calls: list[int] = []
    decode = _toy_decoder(calls)
    z, mask = torch.randn(3, 5, 2), torch.ones(3, 5, dtype=torch.bool)
    domain, genre = torch.tensor([0, 0, 1]), torch.tensor([2, 7, 0])
    assert torch.equal(guided_decode(decode, z, mask, domain, genre, 1.0), decode(z, mask, domain, genre))
    assert calls == [3, 3]


def test_guidance_extrapolates_from_the_null_label():
    calls: list[int] = []
    decode = _toy_decoder(calls)
    z, mask = torch.randn(3, 5, 2), torch.ones(3, 5, dtype=torch.bool)
    domain, genre = torch.tensor([0, 0, 1]), torch.tensor([2, 7, 0])
    cond, uncond = decode(z, mask, domain, genre), decode(z, mask, domain, torch.zeros_like(genre))
    calls.clear()
    out = guided_decode(decode, z, mask, domain, genre, 3.0)
    assert calls == [6]                                             # both halves in one batch
    assert torch.allclose(out, uncond + 3.0 * (cond - uncond))
    assert torch.allclose(guided_decode(decode, z, mask, domain, genre, 0.0), uncond)


def test_training_feeds_the_decoder_dropped_labels_and_scores_the_true_ones(monkeypatch):
    from flowmimic.model import losses as losses_module
    from flowmimic.training import loop

    torch.manual_seed(0)
    model = MotionVAE(VAEConfig(**CFG, genre_critic=True))
    x, mask, domain, genre = _batch()
    seen = {"model": [], "loss": []}
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda x, m, d, g, **kw: seen["model"].append(g.clone()) or forward(x, m, d, g, **kw))

    def spy(out, target, mask, g, *a, **kw):
        seen["loss"].append(g.clone())
        return losses_module.vae_losses(out, target, mask, g, *a, **kw)

    monkeypatch.setattr(loop, "vae_losses", spy)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    batch = {"x": x, "mask": mask, "domain": domain, "genre": genre}
    loop.train_epoch(model, [batch], opt, sched, W, step=0, device=torch.device("cpu"), grad_clip=0.0,
                     log_every=1, cond_dropout=0.999999)
    assert torch.all(seen["model"][0] == NULL_GENRE) and torch.equal(seen["loss"][0], genre)
    loop.train_epoch(model, [batch], opt, sched, W, step=1, device=torch.device("cpu"), grad_clip=0.0,
                     log_every=1, cond_dropout=0.0)
    assert torch.equal(seen["model"][1], genre)
