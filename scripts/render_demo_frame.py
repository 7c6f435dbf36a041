"""Render docs/demo_frame.png: a few stick figures from the demo dataset, as the readers see it.

Run from the project root after `flowmimic demo-data`:  python scripts/render_demo_frame.py
Each panel is one demo sequence read back through `flowmimic.sources.read_sequence` (native files
-> aligned y-up joints at data.fps), shown at its most expressive frame (hands farthest from the
pelvis) with a faint trail of the preceding poses.
"""

from __future__ import annotations

import sys

import torch

from flowmimic.params import load_params
from flowmimic.sources import aist, read_sequence
from flowmimic.sources.mvhumannet import list_sequences, sequence_dir
from flowmimic.viz import plot_gallery

GENRES_SHOWN = ("gBR", "gWA", "gHO", "gJB")


def expressive_frame(joints: torch.Tensor, skip: int) -> int:
    """Frame (after the trail's first `skip` frames) whose hands are farthest from the pelvis."""
    reach = (joints[:, 20:22] - joints[:, :1]).norm(dim=-1).sum(-1)
    return skip + int(reach[skip:].argmax())


def main(out: str = "docs/demo_frame.png") -> None:
    params = load_params("params.yaml")
    train = aist.read_split(params.data.aist_root, "train")
    items = []
    for genre in GENRES_SHOWN:
        name = next(n for n in train if n.startswith(genre) and "_sFM_" in n)
        seq = read_sequence(aist.motion_path(params.data.aist_root, name), params)
        items.append((seq.joints, expressive_frame(seq.joints, 12), taxonomy.genre_name(taxonomy.genre_id(genre))))
    best = None
    for seq_id in list_sequences(params.data.mvh_root):       # the MVH sequence with the highest hand
        try:
            seq = read_sequence(sequence_dir(params.data.mvh_root, seq_id), params)
        except Exception:      # the demo's broken items
            continue
        lift = seq.joints[:, 20:22, 1].max() - seq.joints[:, 0, 1].min()
        if best is None or lift > best[0]:
            best = (lift, seq)
    joints = best[1].joints
    frame = 12 + int(joints[12:, 20:22, 1].max(-1).values.argmax())
    items.append((joints, frame, "MVHumanNet-style studio"))
    plot_gallery(items, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
