"""A trained VAE ready to generate: model, its own normaliser, its window length, its file's hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from flowmimic.errors import DataError
from flowmimic.features.normalize import Normalizer
from flowmimic.model.vae import MotionVAE
from flowmimic.training.checkpoint import checkpoint_normalizer, load_model


@dataclass(frozen=True)
class GenerationModel:
    """What generation needs from a checkpoint (load it once with `load_generation_model`)."""

    model: MotionVAE             # eval mode, on `device`
    normalizer: Normalizer       # the stats the model was trained with (embedded in the checkpoint)
    window: int                  # the training window length (train.seq_len), frames
    path: str
    sha256: str
    device: torch.device


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_generation_model(path: str | Path, device: str | torch.device = "cpu") -> GenerationModel:
    """Rebuild the model from the checkpoint alone; `DataError` naming `path` if it is unusable."""
    path = Path(path)
    device = torch.device(device)
    model, ckpt = load_model(path, map_location=device)
    normalizer = checkpoint_normalizer(ckpt, path)
    try:
        window = int(ckpt["train_params"]["seq_len"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(path, f"checkpoint does not record its window length train_params.seq_len ({e})",
                        "invalid") from e
    if window < 1:
        raise DataError(path, f"checkpoint's window length is {window}", "invalid")
    return GenerationModel(model.eval(), normalizer, window, str(path), file_sha256(path), device)
