"""The flow prior: the network, the objective, sampling (ODE, guidance, known frames, SDEdit), the
latents and train_prior stages (checkpoints, resume, a prior of another VAE refused)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fake_cache import make_fake_cache
from readme_commands import readme_command_params
from flowmimic.errors import ConfigError, DataError
from flowmimic.generation.checkpoint import file_sha256
from flowmimic.generation.flow import LoadedPrior, edit_latents, integrate, load_prior, sample_latents
from flowmimic.model.prior import (FlowPrior, LatentStats, PriorConfig, context_mask, drop_condition, flow_matching_loss,
                                   sample_times)
from flowmimic.model.vae import sinusoidal_embedding, sinusoidal_positions
from flowmimic.stages import latents as latents_stage
from flowmimic.stages import train as train_stage
from flowmimic.stages import train_prior as prior_stage
from flowmimic.training.checkpoint import load_checkpoint

CFG = PriorConfig(d_z=4, d_model=16, n_layers=1, n_heads=2, mlp_ratio=2.0, dropout=0.0, n_domains=2, n_genres=10)


@pytest.fixture(autouse=True)
def _threads(one_thread):
    yield


def _randomised(model: FlowPrior, seed: int = 0) -> FlowPrior:
    """Random weights everywhere (the zero-initialised layers would hide the conditioning)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def _loaded(model: FlowPrior, stats: LatentStats | None = None) -> LoadedPrior:
    stats = stats or LatentStats(torch.zeros(CFG.d_z), torch.ones(CFG.d_z))
    return LoadedPrior(model, stats, 8, "sha", "<memory>", torch.device("cpu"))


def test_sinusoidal_positions_are_the_embedding_of_frame_indices():
    a = sinusoidal_positions(7, 16)
    pos = torch.arange(7, dtype=torch.float64)[:, None]
    freq = torch.exp(torch.arange(0, 16, 2, dtype=torch.float64) * (-math.log(10000.0) / 16))
    expect = torch.stack([(pos * freq).sin(), (pos * freq).cos()], -1).flatten(1)
    assert torch.allclose(a.double(), expect, atol=1e-5)
    assert torch.equal(a, sinusoidal_embedding(torch.arange(7.0), 16))


def test_untrained_prior_predicts_zero_velocity_and_conditioning_matters():
    torch.manual_seed(0)
    model = FlowPrior(CFG)
    x, t = torch.randn(3, 5, 4), torch.rand(3)
    dom, gen = torch.tensor([0, 1, 0]), torch.tensor([3, 0, 7])
    assert torch.equal(model(x, t, dom, gen), torch.zeros(3, 5, 4))          # adaLN-zero + zero output layer
    model = _randomised(model)
    v = model(x, t, dom, gen)
    assert v.shape == (3, 5, 4)
    assert not torch.allclose(v, model(x, t, dom, torch.tensor([4, 0, 7])))   # genre changes the velocity
    assert not torch.allclose(v, model(x, t.flip(0), dom, gen))              # time too
    null_d, null_g = model.null_condition(3, torch.device("cpu"))
    assert null_d.tolist() == [2, 2, 2] and null_g.tolist() == [0, 0, 0]


def test_time_sampling_and_condition_dropout():
    g = torch.Generator().manual_seed(0)
    u = sample_times(20000, "uniform", torch.device("cpu"), g)
    ln = sample_times(20000, "logit_normal", torch.device("cpu"), g)
    assert 0 <= float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.01
    # logit-normal(0, 1): symmetric about 1/2, concentrated in the middle (P(|t - 1/2| < 1/4) = 2 Phi(ln 3) - 1)
    share = float(((ln - 0.5).abs() < 0.25).float().mean())
    assert abs(share - (math.erf(math.log(3) / math.sqrt(2)))) < 0.015 and share > 0.5 + 0.1
    with pytest.raises(ValueError, match="unknown time sampling"):
        sample_times(2, "beta", torch.device("cpu"))
    model = FlowPrior(CFG)
    dom, gen = torch.zeros(4000, dtype=torch.long), torch.full((4000,), 5)
    same = drop_condition(model, dom, gen, 0.0)
    assert same[0] is dom and same[1] is gen
    d2, g2 = drop_condition(model, dom, gen, 0.3, torch.Generator().manual_seed(1))
    dropped = d2 == 2
    assert abs(float(dropped.float().mean()) - 0.3) < 0.03 and torch.equal(g2 == 0, dropped)


def test_flow_matching_loss_is_the_velocity_regression():
    model = _randomised(FlowPrior(CFG))
    x1 = torch.randn(6, 5, 4)
    dom, gen = torch.zeros(6, dtype=torch.long), torch.arange(1, 7)
    loss = flow_matching_loss(model, x1, dom, gen, time_sampling="uniform", generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)                           # the same draws, computed independently
    x0 = torch.randn(x1.shape, generator=g)
    t = torch.rand(6, generator=g)
    xt = (1 - t)[:, None, None] * x0 + t[:, None, None] * x1
    expect = ((model(xt, t, dom, gen) - (x1 - x0)) ** 2).mean()
    assert torch.allclose(loss, expect, atol=1e-6)


class _Exact(torch.nn.Module):
    """A velocity field known in closed form: data is the point `target` (per genre), noise N(0, I).

    For x1 = c fixed, the straight path's velocity at x is (c - x) / (1 - t): it lands on c exactly.
    """

    def __init__(self) -> None:
        super().__init__()
        self.config = CFG
        self.null_domain = CFG.n_domains

    def null_condition(self, n, device):
        return torch.full((n,), 2, dtype=torch.long), torch.zeros(n, dtype=torch.long)

    def forward(self, x, t, domain, genre):
        c = genre.to(x.dtype)[:, None, None] * torch.ones_like(x)
        return (c - x) / (1 - t).clamp(min=1e-3)[:, None, None]


def test_sampling_reaches_the_data_and_guidance_extrapolates():
    prior = _loaded(_Exact())
    z = sample_latents(prior, 3, 6, 0, [1, 2, 3], steps=4, solver="euler", generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z, torch.tensor([1.0, 2.0, 3.0])[:, None, None].expand(3, 6, 4), atol=1e-4)
    z_mid = sample_latents(prior, 3, 6, 0, [1, 2, 3], steps=3, solver="midpoint", generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z_mid, z, atol=1e-3)
    # guidance s: v = v_null + s (v_c - v_null); with null target 0 the samples land on s * c
    zg = sample_latents(prior, 3, 6, 0, [1, 2, 3], steps=8, solver="euler", guidance=2.0,
                        generator=torch.Generator().manual_seed(0))
    assert torch.allclose(zg[:, 0, 0], torch.tensor([2.0, 4.0, 6.0]), atol=1e-3)
    # stats: samples are denormalised
    shifted = _loaded(_Exact(), LatentStats(torch.full((4,), 10.0), torch.full((4,), 2.0)))
    z2 = sample_latents(shifted, 1, 2, 0, 1, steps=4, solver="euler", generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z2, torch.full((1, 2, 4), 12.0), atol=1e-3)
    with pytest.raises(ConfigError, match="solver"):
        sample_latents(prior, 1, 2, 0, 1, steps=2, solver="rk4")
    with pytest.raises(ConfigError, match="at least 1 step"):
        sample_latents(prior, 1, 2, 0, 1, steps=0)


def test_temperature_scales_the_starting_noise():
    # an untrained (adaLN-zero) prior has zero velocity, so a sample is its starting noise, denormalised
    stats = LatentStats(torch.full((4,), 1.0), torch.full((4,), 3.0))
    prior = _loaded(FlowPrior(CFG), stats)
    noise = torch.randn((2, 5, 4), generator=torch.Generator().manual_seed(7))
    for temperature in (1.0, 1.3):
        z = sample_latents(prior, 2, 5, 0, 1, steps=2, temperature=temperature, generator=torch.Generator().manual_seed(7))
        assert torch.allclose(z, 1.0 + 3.0 * temperature * noise, atol=1e-5)
    with pytest.raises(ConfigError, match="temperature"):
        sample_latents(prior, 1, 2, 0, 1, steps=2, temperature=0.0)


def test_known_frames_come_back_exactly_and_the_path_is_replaced():
    torch.manual_seed(0)
    prior = _loaded(_randomised(FlowPrior(CFG)), LatentStats(torch.full((4,), 1.0), torch.full((4,), 3.0)))
    known = torch.randn(2, 8, 4)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[:, :3] = True
    mask[:, 6:] = True
    z = sample_latents(prior, 2, 8, 0, [2, 5], steps=4, known=known, known_mask=mask,
                       generator=torch.Generator().manual_seed(1))
    assert torch.equal(z[mask], known[mask])
    free = sample_latents(prior, 2, 8, 0, [2, 5], steps=4, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(z[~mask], free[~mask])             # the unknown frames react to the context
    # at every step the model saw the known frames on the straight path from the same noise
    seen = []
    model = prior.model
    orig = model.forward
    model.forward = lambda x, t, d, g: (seen.append((x.clone(), float(t[0]))), orig(x, t, d, g))[1]
    sample_latents(prior, 2, 8, 0, [2, 5], steps=2, solver="euler", known=known, known_mask=mask,
                   generator=torch.Generator().manual_seed(1))
    x0 = torch.randn((2, 8, 4), generator=torch.Generator().manual_seed(1))
    kn = prior.stats.normalize(known)
    for x, t in seen:
        assert torch.allclose(x[mask], ((1 - t) * x0 + t * kn)[mask], atol=1e-6)
    with pytest.raises(ValueError, match="known latents"):
        sample_latents(prior, 2, 8, 0, 1, steps=1, known=known[:, :5], known_mask=mask)


def test_edit_latents_strength_interpolates_between_source_and_fresh_sample():
    prior = _loaded(_Exact())
    z = torch.full((2, 5, 4), 7.0)
    g = lambda: torch.Generator().manual_seed(0)   # noqa: E731
    # the exact field lands on the target genre's point whatever the start: an edit reaches the target
    assert torch.allclose(edit_latents(prior, z, 0, 3, 0.5, 4, "euler", generator=g()), torch.full((2, 5, 4), 3.0),
                          atol=1e-3)
    torch.manual_seed(0)
    real = _loaded(_randomised(FlowPrior(CFG)))
    near = edit_latents(real, z, 0, 3, 0.05, 4, generator=g())
    far = edit_latents(real, z, 0, 3, 1.0, 4, generator=g())
    fresh = sample_latents(real, 2, 5, 0, 3, steps=4, generator=g())
    assert (near - z).abs().mean() < (far - z).abs().mean()
    assert torch.allclose(far, fresh, atol=1e-5)                 # strength 1: a fresh sample from the same noise
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ConfigError, match="strength"):
            edit_latents(real, z, 0, 3, bad, 4)


# ----------------------------------------------------------------------------- stages


@pytest.fixture(autouse=True)
def _outside_git(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _vae_and_latents(root: Path, **prior):
    params = make_fake_cache(root, frames=(12, 30), train=dict(epochs=1), prior=prior)
    train_stage.main(params)
    latents_stage.main(params)
    return params


def test_latents_stage_encodes_every_usable_sequence_and_resumes(tmp_path, monkeypatch):
    params = _vae_and_latents(tmp_path / "run")
    index = json.loads((Path(params.latents.dir) / "index.json").read_text())
    assert index["vae_sha256"] == file_sha256(params.train.model_path) and index["d_z"] == 8
    rows = index["sequences"]
    assert sorted({r["split"] for r in rows}) == ["test", "train", "val"]
    assert len(rows) == 2 * (6 + 3 + 3)                          # bad-listed and skipped sequences left out
    from flowmimic.generation.checkpoint import load_generation_model
    from flowmimic.generation.core import encode_features

    gm = load_generation_model(params.train.model_path)
    r = rows[0]
    cached = np.load(Path(params.cache.dir) / r["path"])
    z = np.load(Path(params.latents.dir) / r["path"])
    assert z.shape == (cached.shape[0], 8) == (r["frames"], 8)
    assert np.allclose(z, encode_features(gm, torch.from_numpy(cached)[None], r["domain"])[0].numpy(), atol=1e-6)
    # a re-run reuses every file; a changed source is encoded again
    before = {p: p.stat().st_mtime_ns for p in Path(params.latents.dir).rglob("*.npy")}
    monkeypatch.setattr(latents_stage, "encode_features", lambda *a, **k: pytest.fail("must reuse"))
    latents_stage.main(params)
    assert before == {p: p.stat().st_mtime_ns for p in Path(params.latents.dir).rglob("*.npy")}
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    np.save(Path(params.cache.dir) / r["path"], cached * 1.01)
    calls = []
    real = latents_stage.encode_features
    monkeypatch.setattr(latents_stage, "encode_features", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    latents_stage.main(params)
    assert len(calls) == 1


def test_train_prior_writes_checkpoints_and_samples(tmp_path):
    params = _vae_and_latents(tmp_path / "run", epochs=3, val_every_epochs=2)
    prior_stage.main(params)
    last, best = load_checkpoint(params.prior.last_path), load_checkpoint(params.prior.model_path)
    assert last["finished"] and last["epoch"] == 3 and best["kind"] == "flow_prior"
    assert best["vae_sha256"] == file_sha256(params.train.model_path) and best["window"] == 8
    rows = json.loads((Path(params.latents.dir) / "index.json").read_text())["sequences"]
    z = np.concatenate([np.load(Path(params.latents.dir) / r["path"]) for r in rows
                        if r["split"] == "train" and r["frames"] >= 8])
    assert torch.allclose(best["latent_mean"], torch.from_numpy(z.mean(0)), atol=1e-4)
    assert set(best["model"]) == set(last["ema"])
    assert not any(torch.equal(last["ema"][k], last["model"][k]) for k in last["model"] if last["model"][k].numel() > 8)
    summary = json.loads((Path(params.prior.live_dir) / "metrics.json").read_text())
    assert summary["val"]["epoch"] == 3 and summary["val"]["flow_loss"] > 0 and "flow_loss" in summary["train"]
    prior = load_prior(params.prior.model_path, file_sha256(params.train.model_path))
    s = sample_latents(prior, 2, 8, 0, 3, steps=2, generator=torch.Generator().manual_seed(0))
    assert s.shape == (2, 8, 8) and torch.isfinite(s).all()


class Killed(Exception):
    pass


def test_train_prior_killed_run_resumes_bit_identically(tmp_path, monkeypatch):
    overrides = dict(epochs=4, val_every_epochs=2)
    a = _vae_and_latents(tmp_path / "a", **overrides)
    prior_stage.main(a)
    b = _vae_and_latents(tmp_path / "b", **overrides)
    real, calls = prior_stage.update_ema, []

    def dying(*args, **kw):
        calls.append(1)
        if len(calls) == len(prior_stage.LatentData(b).epoch_batches(b.prior, 0, _info())) * 3 + 1:
            raise Killed                              # during epoch 4; the last checkpoint is after epoch 2
        return real(*args, **kw)

    monkeypatch.setattr(prior_stage, "update_ema", dying)
    with pytest.raises(Killed):
        prior_stage.main(b)
    assert load_checkpoint(b.prior.last_path)["epoch"] == 2
    Path(b.prior.model_path).unlink()
    monkeypatch.setattr(prior_stage, "update_ema", real)
    prior_stage.main(b)
    ca, cb = load_checkpoint(a.prior.last_path), load_checkpoint(b.prior.last_path)
    assert ca["step"] == cb["step"] and ca["best_value"] == cb["best_value"]
    for part in ("model", "ema", "best_model"):
        for k in ca[part]:
            assert torch.equal(ca[part][k], cb[part][k]), (part, k)
    ba, bb = load_checkpoint(a.prior.model_path), load_checkpoint(b.prior.model_path)
    assert all(torch.equal(ba["model"][k], bb["model"][k]) for k in ba["model"])
    tsv = lambda p: (Path(p.prior.live_dir) / "plots/metrics/train/flow_loss.tsv").read_text()   # noqa: E731
    assert tsv(a) == tsv(b)


def _info():
    from flowmimic.training.distributed import DistInfo

    return DistInfo(0, 0, 1, torch.device("cpu"))


def test_prior_of_another_vae_is_refused_in_one_line(tmp_path):
    params = _vae_and_latents(tmp_path / "run", epochs=1)
    prior_stage.main(params)
    with pytest.raises(DataError, match=r"trained on the latents of another VAE") as e:
        load_prior(params.prior.model_path, "0" * 64, vae_path="models/other.pt")
    assert "\n" not in str(e.value) and "models/other.pt" in str(e.value)
    with pytest.raises(DataError, match="not a flow-prior checkpoint"):
        load_prior(params.train.model_path)
    # train_prior refuses latents encoded by another VAE than train.model_path
    index = Path(params.latents.dir) / "index.json"
    data = json.loads(index.read_text())
    index.write_text(json.dumps({**data, "vae_sha256": "f" * 64}))
    with pytest.raises(DataError, match="encoded by another VAE"):
        prior_stage.main(params)


def analytic_prior_params(d: int, layers: int, d_z: int, mlp_ratio: float, n_domains: int, n_genres: int,
                          kernel: int = 1, out_kernel: int = 1, context: bool = False) -> int:
    """FlowPrior's parameter count, written out from its layers (not from the module)."""
    hidden = int(d * mlp_ratio)
    linear = lambda i, o: i * o + o   # noqa: E731
    block = linear(d, 3 * d) + linear(d, d) + linear(d, hidden) + linear(hidden, d) + linear(d, 6 * d)
    return (linear(kernel * d_z, d) + 2 * linear(d, d)                      # latent embedding (conv), time MLP
            + (n_domains + 1) * d + (n_genres + 1) * d + 2 * linear(d, d)   # condition (+ null domain, + genre 0)
            + layers * block + linear(d, 2 * d) + linear(d, d_z)            # blocks, final adaLN + projection
            + (linear(out_kernel * d_z, d_z) if out_kernel > 1 else 0)       # output convolution
            + (linear(kernel * (d_z + 1), d) if context else 0))            # known-frames input (conv)


def test_seed_sized_prior_configuration_size():
    """README's one command: the prior at the seed's scale over the seed VAE's d_z 256 latents."""
    params, overrides = readme_command_params("The seed-sized prior")
    assert sum(section == "prior" for section, _ in overrides) >= 6
    p = params.prior
    assert (p.d_model, p.n_layers, p.n_heads, p.seq_len, params.train.d_z) == (512, 8, 8, 120, 256)
    cfg = PriorConfig.from_params(p, params.train.d_z)
    model = FlowPrior(cfg)
    n = model.num_params()
    assert n == analytic_prior_params(512, 8, 256, p.mlp_ratio, 2, 10, p.kernel, p.out_kernel, cfg.context) == 41_823_232
    assert cfg.context                                     # the README's command keeps the known-frames input
    out = model(torch.randn(1, 4, 256), torch.rand(1), torch.zeros(1, dtype=torch.long), torch.ones(1, dtype=torch.long))
    assert out.shape == (1, 4, 256)


def test_param_count_tiny():
    assert FlowPrior(CFG).num_params() == analytic_prior_params(16, 1, 4, 2.0, 2, 10)
    wide = PriorConfig(**{**CFG.to_dict(), "kernel": 5, "out_kernel": 3})
    assert FlowPrior(wide).num_params() == analytic_prior_params(16, 1, 4, 2.0, 2, 10, kernel=5, out_kernel=3)
    assert FlowPrior(CTX).num_params() == analytic_prior_params(16, 1, 4, 2.0, 2, 10, kernel=3, context=True)
    old = {k: v for k, v in CFG.to_dict().items() if k not in ("kernel", "out_kernel")}
    assert PriorConfig.from_dict(old) == CFG                                  # files written before the kernels


def test_convolutions_start_as_the_plain_network_and_mix_neighbours():
    torch.manual_seed(0)
    model = FlowPrior(PriorConfig(**{**CFG.to_dict(), "kernel": 3, "out_kernel": 3}))
    x, t = torch.randn(2, 7, 4), torch.rand(2)
    dom, gen = torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long)
    assert torch.equal(model(x, t, dom, gen), torch.zeros(2, 7, 4))          # still zero at initialisation
    w = model.out_conv.weight
    assert torch.equal(w[:, :, 1], torch.eye(4)) and not w[:, :, [0, 2]].any()   # identity mixing at first
    model = _randomised(model)
    y = x.clone()
    y[:, 0] += 1.0                                                            # change frame 0 only
    d = (model(y, t, dom, gen) - model(x, t, dom, gen)).abs().sum(-1)
    assert (d[:, :2] > 0).all()                                              # frame 0's neighbour feels it


@pytest.mark.slow
def test_train_prior_two_process_ddp_gloo(tmp_path):
    """`flowmimic train-prior` with prior.nproc_per_node 2 launches torchrun, as `train` does; the
    all-reduced validation equals a one-process evaluation of the same EMA weights."""
    import os
    import subprocess
    import sys

    from fake_cache import write_params
    from flowmimic.training.distributed import DistInfo

    params = _vae_and_latents(tmp_path / "run", epochs=2, batch_size=2, nproc_per_node=2)
    path = write_params(params, tmp_path / "params.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "flowmimic", "train-prior", "--params", str(path)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 2 rank(s)" in proc.stderr
    last = load_checkpoint(params.prior.last_path)
    data = prior_stage.LatentData(params)
    per_rank = len(data.epoch_batches(params.prior, 0, DistInfo(0, 0, 2, torch.device("cpu"))))
    assert last["finished"] and last["step"] == 2 * per_rank
    ema = FlowPrior(PriorConfig.from_dict(last["config"]))
    ema.load_state_dict(last["ema"])
    single = prior_stage.validate(ema, data, params.prior, DistInfo(0, 0, 1, torch.device("cpu")))
    summary = json.loads((Path(params.prior.live_dir) / "metrics.json").read_text())
    assert summary["val"]["flow_loss"] == pytest.approx(single["flow_loss"], rel=1e-5)


# ----------------------------------------------------------------------------- the known-frames input

CTX = PriorConfig(d_z=4, d_model=16, n_layers=1, n_heads=2, mlp_ratio=2.0, dropout=0.0, n_domains=2, n_genres=10,
                  kernel=3, context=True)


def test_context_masks_are_prefixes_or_both_ends_and_leave_frames_to_generate():
    m = context_mask(4000, 12, 0.6, torch.Generator().manual_seed(0))
    used = m.any(1)
    assert abs(used.float().mean().item() - 0.6) < 0.03
    assert int((~m).sum(1).min()) >= 2                                # something is always left to generate
    k = torch.arange(12)
    for row in m[used]:
        known = k[row]
        prefix = int((known < 6).sum())
        assert prefix >= 1 and torch.equal(known[:prefix], torch.arange(prefix))          # a prefix from frame 0 ...
        suffix = known[prefix:]
        assert torch.equal(suffix, torch.arange(12 - len(suffix), 12))                   # ... and maybe a suffix
    both = m[used][:, -1]
    assert 0.4 < both.float().mean().item() < 0.6                     # in-betweening as often as continuation
    assert not context_mask(50, 12, 0.0, torch.Generator().manual_seed(0)).any()


def test_context_loss_scores_only_the_unknown_frames():
    model = _randomised(FlowPrior(CTX))
    x1 = torch.randn(6, 8, 4)
    dom, gen = torch.zeros(6, dtype=torch.long), torch.arange(1, 7)
    loss = flow_matching_loss(model, x1, dom, gen, time_sampling="uniform", context_rate=0.9,
                              generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)                           # the same draws, computed independently
    x0 = torch.randn(x1.shape, generator=g)
    t = torch.rand(6, generator=g)
    known = context_mask(6, 8, 0.9, g)
    xt = (1 - t)[:, None, None] * x0 + t[:, None, None] * x1
    err = ((model(xt, t, dom, gen, x1, known) - (x1 - x0)) ** 2).mean(-1)
    expect = torch.stack([err[i][~known[i]].mean() for i in range(6)]).mean()
    assert known.any() and torch.allclose(loss, expect, atol=1e-6)


def test_context_input_reads_known_frames_only_where_the_mask_says():
    model = _randomised(FlowPrior(CTX))
    x, t = torch.randn(2, 8, 4), torch.full((2,), 0.3)
    dom, gen = torch.zeros(2, dtype=torch.long), torch.tensor([1, 2])
    known, mask = torch.randn(2, 8, 4), torch.zeros(2, 8, dtype=torch.bool)
    mask[:, :3] = True
    out = model(x, t, dom, gen, known, mask)
    other = known.clone()
    other[:, 3:] = 100.0                                            # values outside the mask are ignored
    assert torch.allclose(model(x, t, dom, gen, other, mask), out, atol=1e-6)
    assert not torch.allclose(model(x, t, dom, gen, known * 2, mask), out, atol=1e-4)
    assert torch.allclose(model(x, t, dom, gen), model(x, t, dom, gen, None, torch.zeros_like(mask)), atol=1e-6)
    with pytest.raises(ValueError, match="without a known-frames input"):
        _randomised(FlowPrior(CFG))(x, t, dom, gen, known, mask)


def test_sampling_gives_a_context_prior_the_clean_known_frames():
    torch.manual_seed(0)
    prior = LoadedPrior(_randomised(FlowPrior(CTX)), LatentStats(torch.full((4,), 1.0), torch.full((4,), 3.0)),
                        8, "sha", "<memory>", torch.device("cpu"))
    known = torch.randn(2, 8, 4)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[:, :3] = True
    seen = []
    orig = prior.model.forward
    prior.model.forward = lambda x, t, d, g, k=None, m=None: (seen.append((k, m)), orig(x, t, d, g, k, m))[1]
    z = sample_latents(prior, 2, 8, 0, [2, 5], steps=2, solver="midpoint", guidance=1.5, known=known,
                       known_mask=mask, generator=torch.Generator().manual_seed(1))
    assert torch.equal(z[mask], known[mask]) and len(seen) == 4
    for k, m in seen:                                              # cond and null halves both see the context
        assert torch.equal(m, torch.cat([mask, mask]))
        assert torch.allclose(k[m], prior.stats.normalize(torch.cat([known, known]))[m], atol=1e-6)
    # longer than the window: each window of the blended velocity gets its own slice of the context
    seen.clear()
    long_known, long_mask = torch.randn(1, 14, 4), torch.zeros(1, 14, dtype=torch.bool)
    long_mask[:, :2] = True
    sample_latents(prior, 1, 14, 0, 2, steps=1, solver="euler", known=long_known, known_mask=long_mask)
    k, m = seen[0]
    assert m.shape == (k.shape[0], 8) and bool(m[0, :2].all()) and not bool(m[1:].any())


def test_reinpaint_seams_changes_only_the_frames_next_to_the_generated_ones():
    from flowmimic.generation.flow import reinpaint_seams

    torch.manual_seed(0)
    prior = LoadedPrior(_randomised(FlowPrior(CTX)), LatentStats(torch.full((4,), 1.0), torch.full((4,), 3.0)),
                        8, "sha", "<memory>", torch.device("cpu"))
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[:, :4] = True
    mask[:, 9:] = True                                      # known 0-3 and 9-11, generated 4-8
    z = torch.randn(2, 12, 4)
    out = reinpaint_seams(prior, z, mask, 0, [2, 5], strength=0.3, release=2, steps=8,
                          generator=torch.Generator().manual_seed(1))
    kept = torch.tensor([0, 1, 11])                         # known and more than 2 frames from a generated one
    assert torch.equal(out[:, kept], z[:, kept])
    changed = (out - z).abs().amax(-1) > 1e-4
    assert bool(changed[:, [2, 3, 9, 10]].all()) and bool(changed[:, 4:9].all())    # released and generated move
    again = reinpaint_seams(prior, z, mask, 0, [2, 5], strength=0.3, release=2, steps=8,
                            generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    for strength, release in ((0.0, 2), (0.3, 0)):
        assert torch.equal(reinpaint_seams(prior, z, mask, 0, 2, strength=strength, release=release, steps=8), z)
    with pytest.raises(ConfigError, match="seam strength"):
        reinpaint_seams(prior, z, mask, 0, 2, strength=1.5, release=2, steps=8)
