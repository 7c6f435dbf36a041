"""The training run of one rank: train the motion VAE (`flowmimic train` calls `main` through
`flowmimic.training.launch`, in-process or in each DDP worker).

Reads `params.train` and the cache / split / validate / stats paths. Writes, on rank 0 only:
`train.last_path` (resumable state, every `val_every_epochs` and at the end), `train.model_path` (the
best validation model, same format; evaluation rebuilds the model from its config) and the dvclive
folder `train.live_dir` (params, `train/*` loss parts every `log_every_steps` optimiser steps,
`val/*` metrics at each validation).

Resume: with `train.resume` and a `last_path` written with the same train params and data
(fingerprints), training continues from it -- bit-identical to an uninterrupted run, since every RNG
is reseeded per epoch -- and dvclive continues its history; otherwise it starts fresh.

Reproducibility: `train.threads` fixes torch's CPU thread count (it changes float results), and
nothing written depends on the clock or mtimes, so two from-scratch runs on one machine write
byte-identical checkpoints.

    flowmimic train      # train.nproc_per_node 1: this process (CPU, or one GPU with bf16); > 1: DDP
"""

from __future__ import annotations

import logging
import time

import torch
from tqdm import tqdm

from flowmimic.model.losses import LossWeights
from flowmimic.model.vae import MotionVAE, VAEConfig
from flowmimic.params import Params
from flowmimic.training.checkpoint import (best_model_checkpoint, holds_best, make_checkpoint, resumable,
                                          save_checkpoint)
from flowmimic.training.distributed import DistInfo, barrier, check_device, cleanup, init_distributed
from flowmimic.training.loop import (TrainState, build_loaders, build_optimizer, build_scheduler, data_fingerprint,
                                     seed_everything, train_epoch, trim_live_history, validate)

log = logging.getLogger(__name__)


def main(params: Params) -> None:
    """Train (or resume, or confirm a finished run) with `params`; see the module docstring."""
    check_device(params)
    torch.set_num_threads(params.train.threads)
    info = init_distributed(params.train.device)
    try:
        _train(params, info)
    finally:
        cleanup()


def open_live(p, resumed_at: int | None):
    """dvclive on rank 0; a resumed run first drops what a killed run logged after its checkpoint."""
    from dvclive import Live

    if resumed_at is not None:
        trim_live_history(p.live_dir, resumed_at)
    live = Live(p.live_dir, dvcyaml=False, save_dvc_exp=False, resume=resumed_at is not None)
    live.log_params(p.model_dump(mode="json"))
    return live


def metric_logger(live, prefix: str):
    def on_log(step: int, metrics: dict[str, float]) -> None:
        live.step = step
        for name, value in metrics.items():
            live.log_metric(f"{prefix}/{name}", value)
        live.make_summary()
    return on_log


def _train(params: Params, info: DistInfo) -> None:
    p = params.train
    fingerprints = (p.fingerprint(), data_fingerprint(params))
    ckpt = resumable(p.last_path, p.resume, fingerprints)
    if ckpt is not None and ckpt["finished"]:
        if info.is_main and not holds_best(p.model_path, fingerprints, ckpt["best_epoch"]):
            save_checkpoint(p.model_path, best_model_checkpoint(ckpt))
        log.info("training already finished (%s); %s is up to date", p.last_path, p.model_path)
        barrier()
        return

    torch.manual_seed(p.seed)
    config = VAEConfig.from_train_params(p)
    model = MotionVAE(config).to(info.device)
    data = build_loaders(params, info)
    steps_per_epoch = len(data.sampler)
    optimizer = build_optimizer(model, p.lr, p.weight_decay)
    scheduler = build_scheduler(optimizer, p.warmup_steps, p.epochs * steps_per_epoch, p.min_lr_ratio)
    state = TrainState()
    if ckpt is not None:
        state = TrainState.resume(ckpt, model, optimizer, scheduler)
    net = model
    if info.world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
    log.info("model: %d parameters; %d train / %d val sequences; %d steps per epoch on %d rank(s), device %s",
             model.num_params(), data.n_train_sequences, data.n_val_sequences, steps_per_epoch,
             info.world_size, info.device)

    live = open_live(p, resumed_at=state.step if ckpt is not None else None) if info.is_main else None
    weights = LossWeights.from_train_params(p)
    fields = dict(config=config.to_dict(), train_params=p.model_dump(mode="json"), fingerprints=fingerprints,
                  normalizer=data.normalizer)
    start, first_step = time.perf_counter(), state.step
    bar = tqdm(range(state.epoch, p.epochs), desc="train", unit="epoch", initial=state.epoch, total=p.epochs,
               disable=not info.is_main)
    for epoch in bar:
        seed_everything(p.seed, epoch, info.rank)
        data.sampler.set_epoch(epoch)
        state.step = train_epoch(net, data.train, optimizer, scheduler, weights, step=state.step,
                                 device=info.device, grad_clip=p.grad_clip, log_every=p.log_every_steps,
                                 on_log=metric_logger(live, "train") if live else None,
                                 denormalize=data.normalizer.denormalize, cond_dropout=p.cond_dropout)
        state.epoch = epoch + 1
        finished = state.epoch == p.epochs
        if state.epoch % p.val_every_epochs and not finished:
            continue
        metrics = validate(model, data.val, weights, info.device, data.normalizer.denormalize) if data.n_val_sequences else {}
        if info.is_main:
            if metrics:
                metric_logger(live, "val")(state.step, {**metrics, "epoch": state.epoch})
                bar.set_postfix(val_total=f"{metrics['total']:.4f}")
            if state.improve(metrics.get("total"), model):
                save_checkpoint(p.model_path, make_checkpoint(model, optimizer, scheduler, state, **fields,
                                                              finished=finished))
            save_checkpoint(p.last_path, make_checkpoint(model, optimizer, scheduler, state, **fields,
                                                         finished=finished, with_best=True))
        barrier()

    if info.is_main:
        if not holds_best(p.model_path, fingerprints, state.best_epoch):   # e.g. DVC removed it before a resume
            save_checkpoint(p.model_path, make_checkpoint(model, None, None, state, **fields, finished=True,
                                                          model_state=state.best_model))
        live.end()
        steps, seconds = state.step - first_step, time.perf_counter() - start
        log.info("trained %d steps in %.1f s (%.1f steps/s); best val total %s at epoch %s -> %s",
                 steps, seconds, steps / max(seconds, 1e-9), state.best_value, state.best_epoch, p.model_path)
