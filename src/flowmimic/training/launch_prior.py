"""How `flowmimic train-prior` (the DVC `train_prior` stage) starts: `training.launch`'s path, the prior's section.

One process trains in-process with `prior.nproc_per_node` 1; more start DDP workers under torchrun that
die with the command, exactly as `flowmimic train` does. Imports no torch (the launcher stays light).
"""

from __future__ import annotations

from pathlib import Path

from flowmimic.params import Params
from flowmimic.training.launch import launch


def main(params: Params, params_path: str | Path) -> None:
    """`flowmimic train-prior`: the flow prior over the VAE's latents (`flowmimic.stages.train_prior`)."""
    def run_rank(params: Params) -> None:
        from flowmimic.stages import train_prior

        train_prior.main(params)

    launch(params, params_path, "prior", "train-prior", run_rank)
