"""Training checkpoints: the dict's layout (`make_checkpoint`), atomic and byte-reproducible save,
safe load (``weights_only=True``), model rebuild from the config.

A checkpoint is a dict of tensors and plain Python values only (so it loads with
``torch.load(weights_only=True)``)::

    version            CHECKPOINT_VERSION
    model              the model's state dict
    optimizer          AdamW state dict (None in a best model restored from last.pt's copy)
    scheduler          LR scheduler state dict (idem)
    config             VAEConfig as a dict -- evaluation rebuilds the model from this, never from params
    epoch, step        completed epochs, optimiser steps
    best_value         best validation total so far (None before the first validation)
    best_epoch         epoch of that value
    finished           True once the run has done all `train.epochs`
    train_params       the train section (dict), train_fingerprint, data_fingerprint
    normalizer         {"mean": (263,) tensor, "std": (263,) tensor}: the stats the model was trained with
    best_model         (last.pt only) the best model's state dict, to restore model_path after a crash

Nothing in it depends on the clock or file modification times, so two identical runs write
byte-identical files (and DVC records identical hashes).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from flowmimic.errors import DataError
from flowmimic.features.normalize import Normalizer
from flowmimic.io import BAD_PICKLE_ERRORS, atomic_path
from flowmimic.model.vae import MotionVAE, VAEConfig

if TYPE_CHECKING:
    from flowmimic.training.loop import TrainState

CHECKPOINT_VERSION = 1

log = logging.getLogger(__name__)


def make_checkpoint(model: nn.Module, optimizer: torch.optim.Optimizer | None, scheduler: Any,
                    state: "TrainState", config: dict, train_params: dict, fingerprints: tuple[str, str], *,
                    normalizer: Normalizer, finished: bool, model_state: dict[str, Tensor] | None = None,
                    with_best: bool = False) -> dict[str, Any]:
    """The checkpoint dict (layout above); `model_state` overrides the model's weights."""
    ckpt = {
        "version": CHECKPOINT_VERSION,
        "model": model_state if model_state is not None else model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "config": config, "epoch": state.epoch, "step": state.step,
        "best_value": state.best_value, "best_epoch": state.best_epoch, "finished": finished,
        "train_params": train_params, "train_fingerprint": fingerprints[0], "data_fingerprint": fingerprints[1],
        "normalizer": {"mean": torch.from_numpy(normalizer.mean.copy()), "std": torch.from_numpy(normalizer.std.copy())},
    }
    if with_best:
        ckpt["best_model"] = state.best_model
    return ckpt


def best_model_checkpoint(last: dict[str, Any]) -> dict[str, Any]:
    """The best-model checkpoint held inside a finished run's last checkpoint (its `best_model`)."""
    return {**{k: v for k, v in last.items() if k != "best_model"},
            "model": last["best_model"], "optimizer": None, "scheduler": None}


def save_checkpoint(path: str | Path, ckpt: dict[str, Any]) -> None:
    """Write `ckpt` atomically (temp file in the same folder, then rename).

    Saved through a file object: given a path, `torch.save` names the zip's inner folder after the
    (random) temp file name, so identical checkpoints would differ byte for byte.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(ckpt, f)


def _short_reason(e: Exception) -> str:
    """A one-line cause: torch's weights-only refusal (whose advice is to load unsafely) reduced to its
    actual reason, other multi-line messages (state-dict mismatches) to their first two lines."""
    text = str(e)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    more = " ..." if len(lines) > 2 else ""
    return f"{type(e).__name__}: {' '.join(lines[:2])}{more}"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; `DataError` naming the file if it is unusable."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as e:
        raise DataError(path, "checkpoint not found (run `flowmimic train`)", "missing") from e
    except BAD_PICKLE_ERRORS as e:  # truncated, corrupted, refused globals; our own bugs propagate
        raise DataError(path, f"unreadable checkpoint ({_short_reason(e)})", "unreadable") from e
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        raise DataError(path, f"not a version-{CHECKPOINT_VERSION} FlowMimic checkpoint", "invalid")
    return ckpt


def resumable(last_path: str | Path, resume: bool, fingerprints: tuple[str, str],
              kind: str | None = None) -> dict[str, Any] | None:
    """The checkpoint at `last_path` to resume from, or None: resuming is off, there is none, or it was
    made with other params or data (`fingerprints`: train, data) or is not of `kind`."""
    if not (resume and Path(last_path).exists()):
        return None
    ckpt = load_checkpoint(last_path)
    if ckpt.get("kind") != kind or (ckpt.get("train_fingerprint"), ckpt.get("data_fingerprint")) != fingerprints:
        log.info("%s was made with other params or data: starting fresh", last_path)
        return None
    log.info("resuming from %s (epoch %d, step %d)", last_path, ckpt["epoch"], ckpt["step"])
    return ckpt


def holds_best(path: str | Path, fingerprints: tuple[str, str], best_epoch: int | None) -> bool:
    """Whether `path` holds this run's best model (DVC removes a stage's outputs before it re-runs it)."""
    if not Path(path).exists():
        return False
    ckpt = load_checkpoint(path)
    return (ckpt.get("train_fingerprint"), ckpt.get("data_fingerprint"), ckpt.get("best_epoch")) == (*fingerprints,
                                                                                                    best_epoch)


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[MotionVAE, dict[str, Any]]:
    """Rebuild the model from a checkpoint's own config and weights (eval mode); returns (model, ckpt)."""
    ckpt = load_checkpoint(path, map_location)
    try:
        model = MotionVAE(VAEConfig.from_dict(ckpt["config"]))
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise DataError(path, f"checkpoint does not rebuild the model ({_short_reason(e)})", "invalid") from e
    return model.to(map_location).eval(), ckpt


def checkpoint_normalizer(ckpt: dict[str, Any], path: str | Path) -> Normalizer:
    """The normaliser embedded in a checkpoint dict; `DataError` naming `path` if absent or malformed."""
    stats = ckpt.get("normalizer")
    if stats is None:
        raise DataError(path, "checkpoint carries no normaliser stats (written before they were embedded); "
                        "retrain it with `flowmimic train`", "missing_key")
    try:
        return Normalizer(stats["mean"].cpu().numpy(), stats["std"].cpu().numpy())
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise DataError(path, f"checkpoint's normaliser stats are unusable ({e})", "invalid") from e
