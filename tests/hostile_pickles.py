"""Hostile pickles for the tests of the restricted unpickler: each, if ever executed, touches `marker`."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch


class ShellCommand:
    """Unpickling this runs `touch <marker>` through os.system (the classic pickle attack)."""

    def __init__(self, marker: str | Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


class HostileStorage:
    """Pickles like a tensor's storage (`torch.storage._load_from_bytes`) whose embedded torch archive
    holds a `ShellCommand`; `zipfile` picks torch's zip or legacy archive format."""

    def __init__(self, marker: str | Path, zipfile: bool = True) -> None:
        buf = io.BytesIO()
        torch.save({"x": ShellCommand(marker)}, buf, _use_new_zipfile_serialization=zipfile)
        self.blob = buf.getvalue()

    def __reduce__(self) -> tuple:
        return (torch.storage._load_from_bytes, (self.blob,))
