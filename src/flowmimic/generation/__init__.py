"""Motion out of a trained VAE: reconstruct, transfer and sample, over windows with blending.

    inputs.py      read IN of every kind (joints / features .npy, AIST++ .pkl, MVHumanNet folder)
    checkpoint.py  a checkpoint ready to generate (model, embedded normaliser, window, hash)
    windows.py     overlapping windows, latent- and feature-space blending (no seams)
    placement.py   put an output back where its input was (heading, position, floor, frame count)
    core.py        reconstruct(), transfer(), sample()
    flow.py        the flow prior's sampler: ODE, guidance, known frames, SDEdit edits, the seam pass
    inbetween.py   in-betweening and continuation: known latents, placement, the bend to B
    footlock.py    pin the feet the decoded contact labels plant (two-bone leg IK)
    outputs.py     OUT by extension (.npy, .npz, .gif, .bvh, .pkl), atomically
"""

from flowmimic.generation.checkpoint import GenerationModel, load_generation_model
from flowmimic.generation.core import GeneratedMotion, reconstruct, sample, transfer
from flowmimic.generation.inputs import MotionInput, read_input
from flowmimic.generation.outputs import write_motions

__all__ = ["GeneratedMotion", "GenerationModel", "MotionInput", "load_generation_model", "read_input",
           "reconstruct", "sample", "transfer", "write_motions"]
