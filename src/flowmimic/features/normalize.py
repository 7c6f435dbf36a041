"""Normalisation of 263-D features with the stats file (training and evaluation share this class).

The stats stage writes an npz with ``mean`` and ``std``, each (263,) float32. Only the continuous
dims [0:259] (`layout.CONTINUOUS`) are normalised; the foot contacts [259:263] stay 0/1 whatever
the file says, so a model's contact logits always target the raw labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from flowmimic.errors import DataError
from flowmimic.features import layout

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


class Normalizer:
    """`normalize(x) = (x - mean) / std` on dims 0:259 and its inverse; contacts pass through.

    Works on numpy arrays and torch tensors of shape (..., 263), keeping type, dtype and device.

    Args:
        mean: (263,) feature means.
        std: (263,) feature standard deviations (must be > 0 on the continuous dims).
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        mean = np.asarray(mean, dtype=np.float32).copy()
        std = np.asarray(std, dtype=np.float32).copy()
        if mean.shape != (layout.DIM,) or std.shape != (layout.DIM,):
            raise ValueError(f"mean/std must have shape ({layout.DIM},), got {mean.shape} and {std.shape}")
        # Contacts are labels, never normalised.
        mean[layout.CONTACTS] = 0.0
        std[layout.CONTACTS] = 1.0
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("mean/std must be finite with std > 0")
        self.mean = mean
        self.std = std

    @classmethod
    def from_file(cls, path: str | Path) -> "Normalizer":
        """Read the stats npz (keys 'mean', 'std'); `DataError` naming the file if it is unusable."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as f:
                mean, std = f["mean"], f["std"]
        except FileNotFoundError as e:
            raise DataError(path, "stats file not found (run `flowmimic stats`)", "missing") from e
        except KeyError as e:
            raise DataError(path, f"stats file lacks the array {e}", "missing_key") from e
        except (OSError, ValueError) as e:
            raise DataError(path, f"unreadable stats file ({e})", "unreadable") from e
        try:
            return cls(mean, std)
        except ValueError as e:
            raise DataError(path, str(e), "invalid") from e

    def _stats(self, x: ArrayT) -> tuple[ArrayT, ArrayT]:
        if isinstance(x, torch.Tensor):
            return (torch.as_tensor(self.mean, dtype=x.dtype, device=x.device),
                    torch.as_tensor(self.std, dtype=x.dtype, device=x.device))
        return self.mean.astype(x.dtype, copy=False), self.std.astype(x.dtype, copy=False)

    def normalize(self, x: ArrayT) -> ArrayT:
        """(..., 263) raw features -> normalised features."""
        mean, std = self._stats(x)
        return (x - mean) / std

    def denormalize(self, x: ArrayT) -> ArrayT:
        """(..., 263) normalised features -> raw features."""
        mean, std = self._stats(x)
        return x * std + mean
