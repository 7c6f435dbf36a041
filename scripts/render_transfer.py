"""Render docs/transfer.png: a MVHumanNet test motion and three of its transfers to AIST++ genres.

Run from the project root after `dvc repro generate` (or `bash scripts/demo.sh`):
    python scripts/render_transfer.py [GRID.npz] [OUT.png]
It draws the committed `generate.grid` file (metrics/transfer_grid.npz: the joints of the generate
stage's grid GIF, source first), so the picture shows exactly what the stage judged. Each panel is
the same frame of its motion (the source's most expressive one: hands farthest from the pelvis),
with a faint trail of the preceding poses.
"""

from __future__ import annotations

import sys

import numpy as np

from flowmimic.params import load_params
from flowmimic.viz import plot_gallery

TRAIL, TRAIL_STEP = 4, 3


def expressive_frame(joints: np.ndarray, skip: int) -> int:
    """Frame (after the trail's first `skip` frames) whose hands are farthest from the pelvis."""
    reach = np.linalg.norm(joints[:, 20:22] - joints[:, :1], axis=-1).sum(-1)
    return skip + int(reach[skip:].argmax())


def main(grid: str | None = None, out: str = "docs/transfer.png") -> None:
    data = np.load(grid or load_params("params.yaml").generate.grid, allow_pickle=False)
    joints, labels = data["joints"], [str(x) for x in data["labels"]]
    frame = expressive_frame(joints[0], TRAIL * TRAIL_STEP)
    plot_gallery([(j, frame, label) for j, label in zip(joints, labels)], out, trail=TRAIL, trail_step=TRAIL_STEP)
    print(f"wrote {out} (frame {frame} of {str(data['source'])})")


if __name__ == "__main__":
    main(*sys.argv[1:])
