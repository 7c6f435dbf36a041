"""The project's error hierarchy: every user-facing failure names the file and what is wrong."""

from __future__ import annotations

from pathlib import Path


class FlowMimicError(Exception):
    """Base class of every error FlowMimic raises on purpose."""


class ConfigError(FlowMimicError):
    """A params file (or a value in it) is missing, malformed or out of range."""


class DataError(FlowMimicError):
    """A data file is unreadable, unsafe, malformed or holds implausible values.

    `path` is the offending file (or folder) and `reason` a short machine-friendly tag
    (``"nan"``, ``"too_short"``, ``"missing_key"``, ...) that reports count skips by.
    """

    def __init__(self, path: str | Path, message: str, reason: str = "invalid") -> None:
        self.path = str(path)
        self.reason = reason
        self.message = message
        super().__init__(f"{self.path}: {message}")


class InternalError(FlowMimicError):
    """A bug of ours hit while processing some inputs (not bad data).

    A stage that processes many inputs catches such a bug per input, counts it as
    ``internal_error`` with its traceback logged, finishes the other inputs and writes its
    outputs, then raises this at its end so the run fails visibly.
    """
