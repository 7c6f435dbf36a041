"""The training run of one rank: the flow-matching prior over the VAE's latents (`flowmimic train-prior`
calls `main` through `flowmimic.training.launch`, in-process or in each DDP worker, as `train` does).

Data: the `latents` stage's train-split sequences of at least `prior.seq_len` frames, normalised by
their own per-dimension mean/std (`LatentStats`); each epoch draws `prior.windows_per_sequence`
random windows per sequence (a plan shared by all ranks, then split between them). Condition: the
sequence's domain and genre (MVHumanNet: genre 0), replaced by the null condition with probability
`prior.cond_dropout`. Loss: `model.prior.flow_matching_loss`. Validation: the flow-matching loss of
the EMA weights on every non-overlapping window of the val sequences, with noise and times drawn
from a generator seeded by `prior.seed` (the same draws at every validation, so the values compare).

Writes, on rank 0: `prior.last_path` (resumable: raw and EMA weights, optimiser, scheduler, counters)
every `val_every_epochs` and at the end; `prior.model_path` (the EMA weights of the best validation,
the latent stats, the VAE checkpoint's sha256, the window); dvclive under `prior.live_dir`.
Both checkpoints are written atomically and read with weights_only.

Resume: with `prior.resume` and a last checkpoint of the same prior params and latents (fingerprints),
training continues from it bit-identically to an uninterrupted run (every RNG is reseeded per epoch).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from flowmimic.errors import DataError
from flowmimic.generation.checkpoint import file_sha256
from flowmimic.generation.flow import PRIOR_KIND
from flowmimic.model.prior import FlowPrior, LatentStats, PriorConfig, flow_matching_loss
from flowmimic.params import Params
from flowmimic.stages.latents import index_path, latent_sequences, read_latent_index
from flowmimic.stages.train import metric_logger, open_live
from flowmimic.training.checkpoint import CHECKPOINT_VERSION, holds_best, resumable, save_checkpoint
from flowmimic.training.distributed import DistInfo, barrier, check_device, cleanup, init_distributed, reduce_mean
from flowmimic.training.loop import (NonFiniteLossError, TrainState, build_optimizer, build_scheduler,
                                     seed_everything)

log = logging.getLogger(__name__)


def main(params: Params) -> None:
    """Train (or resume, or confirm a finished run) the prior with `params`; see the module docstring."""
    check_device(params, "prior")
    torch.set_num_threads(params.prior.threads)
    info = init_distributed(params.prior.device)
    try:
        _train(params, info)
    finally:
        cleanup()


# ----------------------------------------------------------------------------- data


class LatentData:
    """The normalised train/val latent sequences in memory, their ids, and the window plans."""

    def __init__(self, params: Params) -> None:
        p, d = params.prior, params.latents.dir
        index = read_latent_index(d)
        self.vae_sha256 = str(index["vae_sha256"])
        if Path(params.train.model_path).exists() and file_sha256(params.train.model_path) != self.vae_sha256:
            raise DataError(index_path(d), f"was encoded by another VAE than {params.train.model_path}; "
                            "re-run `flowmimic latents`", "vae_mismatch")
        train = latent_sequences(d, "train", p.seq_len)
        val = latent_sequences(d, "val", p.seq_len)
        if not train:
            raise DataError(index_path(d), f"no train sequence of at least prior.seq_len = {p.seq_len} latent frames",
                            "empty")
        raw = [torch.from_numpy(s.load()) for s in train]
        self.stats = LatentStats.of(torch.cat(raw))
        self.train = [self.stats.normalize(z) for z in raw]
        self.val = [self.stats.normalize(torch.from_numpy(s.load())) for s in val]
        self.train_cond = torch.tensor([[s.domain_id, s.genre_id] for s in train], dtype=torch.long)
        self.val_cond = torch.tensor([[s.domain_id, s.genre_id] for s in val], dtype=torch.long).reshape(-1, 2)
        self.d_z = int(raw[0].shape[1])
        self.fingerprint = hashlib.blake2b(index_path(d).read_bytes(), digest_size=16).hexdigest()

    def epoch_batches(self, p, epoch: int, info: DistInfo) -> list[list[tuple[int, int]]]:
        """This rank's batches of (sequence, start) keys for `epoch`: the same plan on every rank, split evenly."""
        rng = np.random.default_rng(np.random.SeedSequence([p.seed, epoch]))
        keys = [(i, int(rng.integers(0, z.shape[0] - p.seq_len + 1))) for i, z in enumerate(self.train)
                for _ in range(p.windows_per_sequence)]
        order = rng.permutation(len(keys))
        per_rank = len(keys) // info.world_size
        mine = [keys[j] for j in order[info.rank * per_rank:(info.rank + 1) * per_rank]]
        return [mine[s:s + p.batch_size] for s in range(0, len(mine), p.batch_size)]

    def stack(self, seqs: list[Tensor], cond: Tensor, keys: list[tuple[int, int]], length: int
              ) -> tuple[Tensor, Tensor, Tensor]:
        x = torch.stack([seqs[i][s:s + length] for i, s in keys])                     # (B, T, Z)
        c = cond[[i for i, _ in keys]]
        return x, c[:, 0], c[:, 1]

    def val_keys(self, length: int) -> list[tuple[int, int]]:
        """Every non-overlapping val window, in order."""
        return [(i, s) for i, z in enumerate(self.val) for s in range(0, z.shape[0] - length + 1, length)]


# ----------------------------------------------------------------------------- steps


def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter (buffers copied)."""
    with torch.no_grad():
        for e, m in zip(ema.parameters(), model.parameters()):
            e.lerp_(m.detach(), 1.0 - decay)
        for e, m in zip(ema.buffers(), model.buffers()):
            e.copy_(m)


@torch.no_grad()
def validate(ema: FlowPrior, data: LatentData, p, info: DistInfo) -> dict[str, float]:
    """Flow-matching loss of the EMA weights on the val windows, over all ranks.

    The noise and time of every window are drawn for ALL windows in one fixed order (generator seeded
    by `prior.seed`) and each rank takes its share, so the value does not depend on the rank count.
    """
    keys = data.val_keys(p.seq_len)
    g = torch.Generator().manual_seed(p.seed)
    x0_all = torch.randn((len(keys), p.seq_len, data.d_z), generator=g)
    t_all = torch.rand(len(keys), generator=g)
    mine = list(range(info.rank, len(keys), info.world_size))
    total, count, dev = 0.0, 0, info.device
    ema.eval()
    for s in range(0, len(mine), p.batch_size):
        idx = mine[s:s + p.batch_size]
        x, dom, gen = data.stack(data.val, data.val_cond, [keys[i] for i in idx], p.seq_len)
        x0, t = x0_all[idx], t_all[idx]
        xt = (1 - t)[:, None, None] * x0 + t[:, None, None] * x
        err = (ema(xt.to(dev), t.to(dev), dom.to(dev), gen.to(dev)).float() - (x - x0).to(dev)) ** 2
        total += err.mean((1, 2)).sum().item()
        count += x.shape[0]
    return reduce_mean({"flow_loss": total}, count, dev) if keys else {}


def _checkpoint(model: nn.Module, ema: nn.Module, optimizer, scheduler, state: TrainState, config: PriorConfig,
                data: LatentData, p, fingerprints: tuple[str, str], *, finished: bool, best: bool) -> dict:
    ckpt = {"version": CHECKPOINT_VERSION, "kind": PRIOR_KIND, "config": config.to_dict(),
            "latent_mean": data.stats.mean.clone(), "latent_std": data.stats.std.clone(),
            "vae_sha256": data.vae_sha256, "window": p.seq_len, "epoch": state.epoch, "step": state.step,
            "best_value": state.best_value, "best_epoch": state.best_epoch, "finished": finished,
            "prior_params": p.model_dump(mode="json"), "train_fingerprint": fingerprints[0],
            "data_fingerprint": fingerprints[1]}
    if best:                                    # the model to sample with: the best EMA weights
        return {**ckpt, "model": state.best_model, "optimizer": None, "scheduler": None}
    return {**ckpt, "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "best_model": state.best_model}


def _train(params: Params, info: DistInfo) -> None:
    p = params.prior
    data = LatentData(params)
    fingerprints = (p.fingerprint(), data.fingerprint)
    config = PriorConfig.from_params(p, data.d_z)
    ckpt = resumable(p.last_path, p.resume, fingerprints, kind=PRIOR_KIND)
    if ckpt is not None and ckpt["finished"]:
        if info.is_main and not holds_best(p.model_path, fingerprints, ckpt["best_epoch"]):
            state = TrainState(ckpt["epoch"], ckpt["step"], ckpt["best_value"], ckpt["best_epoch"], ckpt["best_model"])
            save_checkpoint(p.model_path, _checkpoint(None, None, None, None, state, config, data, p, fingerprints,
                                                      finished=True, best=True))
        log.info("prior training already finished (%s); %s is up to date", p.last_path, p.model_path)
        barrier()
        return

    torch.manual_seed(p.seed)
    model = FlowPrior(config).to(info.device)
    ema = copy.deepcopy(model).eval()
    for q in ema.parameters():
        q.requires_grad_(False)
    steps_per_epoch = len(data.epoch_batches(p, 0, info))
    optimizer = build_optimizer(model, p.lr, p.weight_decay)
    scheduler = build_scheduler(optimizer, p.warmup_steps, p.epochs * steps_per_epoch, p.min_lr_ratio)
    state = TrainState()
    if ckpt is not None:
        state = TrainState.resume(ckpt, model, optimizer, scheduler)
        ema.load_state_dict(ckpt["ema"])
    net = model
    if info.world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
    log.info("prior: %d parameters; %d train / %d val latent sequences (d_z %d); %d steps per epoch on %d rank(s), "
             "device %s", model.num_params(), len(data.train), len(data.val), data.d_z, steps_per_epoch,
             info.world_size, info.device)

    live = open_live(p, resumed_at=state.step if ckpt is not None else None) if info.is_main else None
    on_log = metric_logger(live, "train") if live else None
    start, first_step = time.perf_counter(), state.step
    bar = tqdm(range(state.epoch, p.epochs), desc="train_prior", unit="epoch", initial=state.epoch, total=p.epochs,
               disable=not info.is_main)
    for epoch in bar:
        seed_everything(p.seed, epoch, info.rank)
        model.train()
        window: list[Tensor] = []
        for keys in data.epoch_batches(p, epoch, info):
            x, dom, gen = (v.to(info.device) for v in data.stack(data.train, data.train_cond, keys, p.seq_len))
            loss = flow_matching_loss(net, x, dom, gen, time_sampling=p.time_sampling, cond_dropout=p.cond_dropout,
                                      context_rate=p.context_rate)
            if not bool(torch.isfinite(loss)):
                raise NonFiniteLossError(f"non-finite flow-matching loss at step {state.step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if p.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            update_ema(ema, model, p.ema_decay)
            state.step += 1
            window.append(loss.detach())
            if on_log is not None and state.step % p.log_every_steps == 0:
                on_log(state.step, {"flow_loss": torch.stack(window).mean().item(), "lr": lr})
                window.clear()
        state.epoch = epoch + 1
        finished = state.epoch == p.epochs
        if state.epoch % p.val_every_epochs and not finished:
            continue
        metrics = validate(ema, data, p, info)
        if info.is_main:
            if metrics:
                metric_logger(live, "val")(state.step, {**metrics, "epoch": state.epoch})
                bar.set_postfix(val_flow_loss=f"{metrics['flow_loss']:.4f}")
            if state.improve(metrics.get("flow_loss"), ema):
                save_checkpoint(p.model_path, _checkpoint(model, ema, optimizer, scheduler, state, config, data, p,
                                                          fingerprints, finished=finished, best=True))
            save_checkpoint(p.last_path, _checkpoint(model, ema, optimizer, scheduler, state, config, data, p,
                                                     fingerprints, finished=finished, best=False))
        barrier()

    if info.is_main:
        if not holds_best(p.model_path, fingerprints, state.best_epoch):   # e.g. DVC removed it before a resume
            save_checkpoint(p.model_path, _checkpoint(model, ema, optimizer, scheduler, state, config, data, p,
                                                      fingerprints, finished=True, best=True))
        live.end()
        steps, seconds = state.step - first_step, time.perf_counter() - start
        log.info("prior: trained %d steps in %.1f s (%.1f steps/s); best val flow loss %s at epoch %s -> %s",
                 steps, seconds, steps / max(seconds, 1e-9), state.best_value, state.best_epoch, p.model_path)
