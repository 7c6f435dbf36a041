"""Stick-figure plots and animations: files are written (atomically), inputs are checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from flowmimic.body.skeleton import default_rest_joints
from flowmimic.errors import DataError
from flowmimic.params import load_params
from flowmimic.demo.dataset import write_demo
from flowmimic.demo.dances import synthesize_dances
from flowmimic.demo.motion import DanceSpec
from flowmimic.viz import animate_comparison, draw_skeleton, plot_gallery, plot_sequence, plot_sequence_file

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC, GIF_MAGIC = b"\x89PNG", b"GIF8"


@pytest.fixture(scope="module")
def joints() -> torch.Tensor:
    """(40, 22, 3): two seconds of a demo dance at 20 fps."""
    spec = DanceSpec("gLO", dancer_seed=1, advanced=True, bpm=110.0, seconds=2.0, seed=3)
    return synthesize_dances([spec], default_rest_joints(), 20.0).sequence(0)[2][:, :22]


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_draw_skeleton_2d_and_3d(joints):
    fig = Figure()
    FigureCanvasAgg(fig)
    ax2, ax3 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2, projection="3d")
    lines = draw_skeleton(ax2, joints[0], view="side")
    assert len(lines) == 5
    xs = np.concatenate([line.get_xdata() for line in lines])
    assert np.isclose(xs.max(), float(joints[0, :, 2].max()))                  # side view plots z
    assert len(draw_skeleton(ax3, joints[0].numpy(), color="k")) == 5
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        draw_skeleton(ax2, torch.zeros(10, 2))
    with pytest.raises(ValueError, match="view"):
        draw_skeleton(ax2, joints[0], view="above")


def test_plot_sequence_and_gallery_write_pngs(joints, tmp_path):
    out = tmp_path / "seq.png"
    plot_sequence(joints, 20.0, out, n_frames=3, title="lock")
    assert out.read_bytes()[:4] == PNG_MAGIC and out.stat().st_size > 10_000
    gallery = tmp_path / "gallery.png"
    plot_gallery([(joints, 10, "a"), (joints.numpy(), 30, "b")], gallery)
    assert gallery.read_bytes()[:4] == PNG_MAGIC and gallery.stat().st_size > 5_000
    assert _no_temp_files(tmp_path)


def test_animate_comparison_writes_a_small_gif(joints, tmp_path):
    out = tmp_path / "cmp.gif"
    recon = joints + 0.02 * torch.randn(joints.shape, generator=torch.Generator().manual_seed(0))
    animate_comparison(joints[:12], recon[:12], out, fps=10, title="gt vs recon")
    data = out.read_bytes()
    assert data[:4] == GIF_MAGIC and 1_000 < len(data) < 1_000_000
    with Image.open(out) as im:
        assert im.n_frames == 12
        assert im.size[0] > im.size[1]                                      # two panels side by side
    assert _no_temp_files(tmp_path)


def test_plot_sequence_file_npy_inputs_and_errors(joints, tmp_path):
    params = load_params(REPO / "params.yaml")
    npy = tmp_path / "joints.npy"
    np.save(npy, joints.numpy())
    plot_sequence_file(npy, tmp_path / "j.png", params)
    assert (tmp_path / "j.png").read_bytes()[:4] == PNG_MAGIC
    plot_sequence_file(npy, tmp_path / "j.gif", params, fps=20)
    with Image.open(tmp_path / "j.gif") as im:
        assert im.n_frames <= params.evaluate.gif_frames
    from flowmimic.features.humanml3d import joints_to_features

    feats = tmp_path / "feats.npy"
    np.save(feats, joints_to_features(joints).numpy())
    plot_sequence_file(feats, tmp_path / "f.png", params)
    assert (tmp_path / "f.png").read_bytes()[:4] == PNG_MAGIC
    with pytest.raises(DataError, match="png"):
        plot_sequence_file(npy, tmp_path / "out.jpg", params)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 7)))
    with pytest.raises(DataError, match="bad.npy"):
        plot_sequence_file(bad, tmp_path / "b.png", params)
    with pytest.raises(DataError, match="not found"):
        plot_sequence_file(tmp_path / "missing.npy", tmp_path / "m.png", params)


def test_plot_sequence_file_reads_raw_demo_files(tmp_path):
    params = load_params(REPO / "params.yaml")
    demo = params.demo.model_copy(update=dict(root=str(tmp_path / "demo"), aist_dancers=3, aist_val_dancers=1, aist_test_dancers=1,
                                              aist_sequences=1,
                                              aist_seconds=[2.5, 2.5], mvh_performers=2, mvh_outfits=1,
                                              mvh_seconds=[3.0, 3.0], inject_bad=False))
    params = params.model_copy(update={"demo": demo})
    write_demo(params)
    motion = next((tmp_path / "demo" / "aist" / "motions").glob("*.pkl"))
    plot_sequence_file(motion, tmp_path / "aist.png", params)
    assert (tmp_path / "aist.png").read_bytes()[:4] == PNG_MAGIC
    seq_dir = next((tmp_path / "demo" / "mvh").glob("*/*"))
    plot_sequence_file(seq_dir, tmp_path / "mvh.png", params)
    assert (tmp_path / "mvh.png").read_bytes()[:4] == PNG_MAGIC
