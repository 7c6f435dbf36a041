"""How `flowmimic train` and `flowmimic train-prior` (the DVC `train` / `train_prior` stages) start
training, so that no trainer outlives it. Both go through `launch`; `<section>` below is `train` or `prior`.

- ``<section>.nproc_per_node == 1``: training runs in this very process -- killing the command (or the
  process group `dvc repro` runs it in) kills the trainer.
- ``> 1``: this process (the launcher) starts ``python -m torch.distributed.run`` as a child, which
  starts one worker per rank. torchrun puts its workers in a new session, so a signal to the
  launcher's process group never reaches them; instead each link of the chain asks the kernel to
  kill it when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``): launcher dies ->
  torchrun dies -> workers die. SIGTERM / SIGINT / SIGHUP to the launcher are forwarded to torchrun,
  which stops its workers cleanly.
- A worker (started by torchrun, ``LOCAL_RANK`` set) trains its rank in-process.

This module imports no torch, so the launcher stays light and forks nothing heavy.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from flowmimic.errors import FlowMimicError
from flowmimic.params import Params

log = logging.getLogger(__name__)

LAUNCHER_ENV = "FLOWMIMIC_TRAIN_LAUNCHER_PID"   # tells workers which process must be their grandparent
_PR_SET_PDEATHSIG = 1                           # <linux/prctl.h>
# Opened once at import: a preexec_fn runs between fork and exec, where dlopen could deadlock.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class TrainingFailed(FlowMimicError):
    """A DDP run exited with an error (the workers' tracebacks are in the log above)."""


def die_with_parent(expected_parent: int | None = None, generations: int = 1) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; a no-op elsewhere.

    The request only covers a parent that dies after it is made, so if `expected_parent` (the pid
    `generations` levels up) is no longer our ancestor, it already died: exit at once.
    Safe in a `preexec_fn` (no allocation-heavy work, no locks).
    """
    if _LIBC is None:
        return
    if _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if expected_parent is not None and _ancestor(generations) != expected_parent:
        os._exit(1)


def _ancestor(generations: int) -> int | None:
    pid = os.getpid()
    for _ in range(generations):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        pid = int(stat.rpartition(")")[2].split()[1])    # field 4 (ppid); the name may hold spaces
    return pid


def run_torchrun(nproc: int, params_path: str | Path, command: str = "train") -> int:
    """Run `nproc` DDP workers of `flowmimic <command>` under torchrun as this process's child; returns
    torchrun's exit code."""
    me = os.getpid()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "flowmimic", command, "--params", str(params_path)]
    log.info("starting %d DDP workers: %s", nproc, " ".join(cmd[1:]))
    proc = subprocess.Popen(cmd, env={**os.environ, LAUNCHER_ENV: str(me)},
                            preexec_fn=lambda: die_with_parent(me, generations=1))
    received: list[int] = []

    def forward(signum: int, _frame) -> None:
        received.append(signum)
        proc.send_signal(signal.SIGTERM)          # torchrun terminates its workers on SIGTERM

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.signal(s, forward) for s in handled}
    try:
        rc = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        raise SystemExit(128 + received[0])
    return rc


def launch(params: Params, params_path: str | Path, section: str, command: str,
           run_rank: Callable[[Params], None]) -> None:
    """Train in-process (one rank, or a torchrun worker: `run_rank(params)`) or launch
    `<section>.nproc_per_node` DDP workers of `flowmimic <command>`."""
    p = getattr(params, section)
    if p.device == "cuda":                      # checked before any work (torch is imported only then)
        from flowmimic.training.distributed import check_device

        check_device(params, section)
    worker = "LOCAL_RANK" in os.environ
    if worker and LAUNCHER_ENV in os.environ:
        die_with_parent(int(os.environ[LAUNCHER_ENV]), generations=2)   # worker -> torchrun -> launcher
    if worker or p.nproc_per_node == 1:
        run_rank(params)
        return
    rc = run_torchrun(p.nproc_per_node, params_path, command)
    if rc != 0:
        raise TrainingFailed(f"{params_path}: DDP training with {section}.nproc_per_node="
                             f"{p.nproc_per_node} failed (torchrun exit code {rc}; see the log above)")


def main(params: Params, params_path: str | Path) -> None:
    """`flowmimic train`: the motion VAE (`flowmimic.stages.train`); the prior's is `training.launch_prior`."""
    def run_rank(params: Params) -> None:
        from flowmimic.stages import train

        train.main(params)

    launch(params, params_path, "train", "train", run_rank)
