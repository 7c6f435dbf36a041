"""Training checkpoints: atomic save, safe load (``weights_only=True``), model rebuild from the config.

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
    best_model         (last.pt only) the best model's state dict, to restore model_path after a crash
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from flowmimic.errors import DataError
from flowmimic.io import BAD_PICKLE_ERRORS, atomic_path
from flowmimic.model.vae import MotionVAE, VAEConfig

CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, ckpt: dict[str, Any]) -> None:
    """Write `ckpt` atomically (temp file in the same folder, then rename)."""
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; `DataError` naming the file if it is unusable."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as e:
        raise DataError(path, "checkpoint not found (run `flowmimic train`)", "missing") from e
    except BAD_PICKLE_ERRORS as e:  # truncated, corrupted, refused globals; our own bugs propagate
        raise DataError(path, f"unreadable checkpoint ({type(e).__name__}: {e})", "unreadable") from e
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        raise DataError(path, f"not a version-{CHECKPOINT_VERSION} FlowMimic checkpoint", "invalid")
    return ckpt


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[MotionVAE, dict[str, Any]]:
    """Rebuild the model from a checkpoint's own config and weights (eval mode); returns (model, ckpt)."""
    ckpt = load_checkpoint(path, map_location)
    try:
        model = MotionVAE(VAEConfig.from_dict(ckpt["config"]))
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise DataError(path, f"checkpoint does not rebuild the model ({e})", "invalid") from e
    return model.to(map_location).eval(), ckpt
