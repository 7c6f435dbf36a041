"""Stick-figure plots and animations of joint sequences (matplotlib, no display needed).

Figures are built as `matplotlib.figure.Figure` objects on an Agg canvas (no pyplot, no global
backend switch), so plotting works in stages, tests and on machines without a display. Joints are
FlowMimic's canonical ones: (T, 22, 3) metres, y-up, SMPL order. In 3-D panels the y-up frame is
shown with matplotlib's z as "up" through the proper rotation (x, y, z) -> (x, -z, y), so left and
right are not mirrored, and the default camera looks at the front of a body facing +z.

`plot_sequence` draws a strip of frames and the pelvis trajectory seen from above (the seed's
`main.py` demo); `animate_comparison` writes a side-by-side ground-truth vs reconstruction GIF;
`plot_sequence_file` backs `flowmimic plot-sequence IN OUT`. Every file is written atomically.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from matplotlib.animation import PillowWriter
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the "3d" projection)
from mpl_toolkits.mplot3d.art3d import Line3DCollection

from flowmimic.body.skeleton import KINEMATIC_CHAINS, N_JOINTS, PELVIS
from flowmimic.errors import DataError
from flowmimic.io import atomic_path, write_bytes
from flowmimic.params import Params

# Chain colours: right leg, left leg, spine, right arm, left arm (KINEMATIC_CHAINS order).
RIGHT_COLOR, LEFT_COLOR, CENTER_COLOR = "#d62728", "#1f77b4", "#333333"
_CHAIN_COLORS = (RIGHT_COLOR, LEFT_COLOR, CENTER_COLOR, RIGHT_COLOR, LEFT_COLOR)
_VIEW_HALF_WIDTH_M = 1.0       # half the width of the box each 3-D panel shows around the pelvis
_FIGURE_HEIGHT_M = 2.0


def _as_joints(joints: Any, what: str = "joints") -> np.ndarray:
    """(T, >=22, 3) tensor/array -> (T, 22, 3) float64 numpy."""
    arr = joints.detach().cpu().numpy() if isinstance(joints, torch.Tensor) else np.asarray(joints)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] < N_JOINTS or arr.shape[2] != 3:
        raise ValueError(f"{what} must be (T, 22, 3), got {arr.shape}")
    return arr[:, :N_JOINTS].astype(np.float64)


def _to_mpl(points: np.ndarray) -> np.ndarray:
    """(..., 3) y-up points -> matplotlib's z-up display frame, (x, y, z) -> (x, -z, y)."""
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)


def _is_3d(ax: Axes) -> bool:
    return getattr(ax, "name", "") == "3d"


def draw_skeleton(ax: Axes, joints: Any, view: str = "front", color: str | None = None,
                  linewidth: float = 2.0, alpha: float = 1.0, joint_size: float = 0.0) -> list:
    """Draw one pose as a stick figure; returns the line artists (one per kinematic chain).

    Args:
        ax: a 3-D axes (`projection="3d"`) or a 2-D one. On a 2-D axes the pose is projected:
            `view` "front" plots (x, y) as seen from +z, "side" plots (z, y), "top" plots (x, z).
        joints: (22, 3) metres, y-up (a tensor or an array).
        color: one colour for every chain; None colours left blue, right red, spine grey.
        linewidth, alpha: line style; joint_size: marker size of the joints (0 hides them).
    """
    pose = _as_joints(joints)[0]
    artists = []
    for chain, chain_color in zip(KINEMATIC_CHAINS, _CHAIN_COLORS):
        pts = pose[list(chain)]
        style = dict(color=color or chain_color, linewidth=linewidth, alpha=alpha,
                     marker="o" if joint_size else None, markersize=joint_size, solid_capstyle="round")
        if _is_3d(ax):
            m = _to_mpl(pts)
            (line,) = ax.plot(m[:, 0], m[:, 1], m[:, 2], **style)
        else:
            cols = {"front": (0, 1), "side": (2, 1), "top": (0, 2)}
            if view not in cols:
                raise ValueError(f"view must be 'front', 'side' or 'top', got {view!r}")
            i, j = cols[view]
            (line,) = ax.plot(pts[:, i], pts[:, j], **style)
        artists.append(line)
    return artists


def _setup_3d(ax: Axes, center_xz: np.ndarray, floor_y: float, elev: float = 12.0, azim: float = -70.0) -> None:
    """A square box around a pelvis position from `floor_y` up, no axes drawn."""
    h = _VIEW_HALF_WIDTH_M
    cx, cz = float(center_xz[0]), float(center_xz[1])
    ax.set_xlim(cx - h, cx + h)
    ax.set_ylim(-cz - h, -cz + h)
    ax.set_zlim(floor_y, floor_y + _FIGURE_HEIGHT_M)
    ax.set_box_aspect((2 * h, 2 * h, _FIGURE_HEIGHT_M), zoom=1.5)
    ax.view_init(elev=elev, azim=azim)
    ax.set_axis_off()           # the floor grid (`_floor_lines`) is the only frame of reference


def _floor_segments(center_xz: np.ndarray, floor_y: float, step: float = 0.5) -> np.ndarray:
    """(S, 2, 3) segments, in matplotlib's frame, of a grid on the floor plane around `center_xz`
    (fixed to the world, so travel shows)."""
    h = _VIEW_HALF_WIDTH_M
    lo_x = math.floor((center_xz[0] - h) / step) * step
    lo_z = math.floor((center_xz[1] - h) / step) * step
    segs = []
    for i in range(int(round(2 * h / step)) + 2):
        x, z = lo_x + i * step, lo_z + i * step
        segs.append([[x, floor_y, center_xz[1] - h], [x, floor_y, center_xz[1] + h]])
        segs.append([[center_xz[0] - h, floor_y, z], [center_xz[0] + h, floor_y, z]])
    return _to_mpl(np.asarray(segs, dtype=float))


def _floor_lines(ax: Axes, center_xz: np.ndarray, floor_y: float) -> Line3DCollection:
    """The floor grid (`_floor_segments`) as one collection on `ax` (animations move it with `set_segments`:
    one artist to draw, not one per grid line)."""
    grid = Line3DCollection(_floor_segments(center_xz, floor_y), colors="#bbbbbb", linewidths=0.6, alpha=0.7)
    ax.add_collection3d(grid)
    return grid


def _save_figure(fig: Figure, out_path: str | Path, dpi: float) -> None:
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format=Path(out_path).suffix.lstrip(".").lower() or "png", dpi=dpi)


def plot_sequence(joints: Any, fps: float, out_path: str | Path, n_frames: int = 6,
                  title: str | None = None, dpi: float = 90) -> None:
    """A strip of `n_frames` evenly spaced poses and the pelvis trajectory seen from above.

    Args:
        joints: (T, 22, 3) metres, y-up.
        fps: frame rate (for the time labels).
        out_path: image file (.png; any format matplotlib writes), written atomically.
    """
    seq = _as_joints(joints)
    t_len = seq.shape[0]
    frames = np.unique(np.linspace(0, t_len - 1, min(n_frames, t_len)).round().astype(int))
    floor_y = float(seq[..., 1].min())
    fig = Figure(figsize=(2.3 * len(frames), 5.6))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, len(frames), height_ratios=(1.35, 1.0))
    for col, f in enumerate(frames):
        ax = fig.add_subplot(grid[0, col], projection="3d")
        center = seq[f, PELVIS, [0, 2]]
        _setup_3d(ax, center, floor_y)
        _floor_lines(ax, center, floor_y)
        draw_skeleton(ax, seq[f])
        ax.set_title(f"t = {f / fps:.2f} s", fontsize=9)
    ax = fig.add_subplot(grid[1, :])
    pelvis = seq[:, PELVIS]
    times = np.arange(t_len) / fps
    points = ax.scatter(pelvis[:, 0], pelvis[:, 2], c=times, cmap="viridis", s=6)
    ax.plot(pelvis[:, 0], pelvis[:, 2], color="#999999", linewidth=0.6, zorder=0)
    ax.scatter(pelvis[frames, 0], pelvis[frames, 2], facecolors="none", edgecolors="k", s=40,
               label="frames above")
    ax.plot(*pelvis[0, [0, 2]], marker="o", color="green", linestyle="none", label="start")
    ax.plot(*pelvis[-1, [0, 2]], marker="X", color="red", linestyle="none", label="end")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    ax.set_title("pelvis trajectory from above", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.colorbar(points, ax=ax, label="time (s)", fraction=0.03)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save_figure(fig, out_path, dpi)


def _facing_azimuth(pose: np.ndarray, offset_deg: float = 20.0) -> float:
    """Camera azimuth (degrees) that sees the front of `pose` (22, 3), `offset_deg` to its left."""
    across = (pose[1] - pose[2]) + (pose[16] - pose[17])          # toward the body's left
    forward = np.cross(across, np.array([0.0, 1.0, 0.0]))          # left x up = forward
    fx, fy = forward[0], -forward[2]                                # in the display frame
    return math.degrees(math.atan2(fy, fx)) + offset_deg


def plot_gallery(items: Sequence[tuple[Any, int, str]], out_path: str | Path, trail: int = 4,
                 trail_step: int = 3, dpi: float = 100) -> None:
    """A row of 3-D stick figures, each standing on its floor, with a faint trail of earlier poses.

    Args:
        items: (joints (T, 22, 3), frame index, label) per panel; the floor is each sequence's
            lowest joint height.
        out_path: image file, written atomically.
        trail, trail_step: how many earlier poses to ghost behind each figure, and how many frames apart.
    """
    fig = Figure(figsize=(2.6 * len(items), 3.6))
    FigureCanvasAgg(fig)
    for i, (joints, frame, label) in enumerate(items):
        seq = _as_joints(joints)
        floor_y = float(seq[..., 1].min())
        ax = fig.add_subplot(1, len(items), i + 1, projection="3d")
        center = seq[frame, PELVIS, [0, 2]]
        _setup_3d(ax, center, floor_y, azim=_facing_azimuth(seq[frame]))
        _floor_lines(ax, center, floor_y)
        for k in range(trail, 0, -1):
            if frame - k * trail_step >= 0:
                draw_skeleton(ax, seq[frame - k * trail_step], color="#888888", linewidth=1.2,
                              alpha=0.35 * (1 - k / (trail + 1)))
        draw_skeleton(ax, seq[frame], linewidth=2.4, joint_size=2.5)
        ax.set_title(label, fontsize=10)
    fig.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=0.92, wspace=0.0)
    _save_figure(fig, out_path, dpi)


def _animate(panels: Sequence[tuple[np.ndarray, str]], out_gif: str | Path, fps: float,
             title: str | None, dpi: float) -> None:
    """One 3-D panel per sequence, all advancing together; GIF written atomically."""
    t_len = min(p.shape[0] for p, _ in panels)
    floor_y = float(min(p[:t_len, :, 1].min() for p, _ in panels))
    fig = Figure(figsize=(3.0 * len(panels), 3.4))
    FigureCanvasAgg(fig)
    state = []
    for i, (seq, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1, projection="3d")
        ax.set_title(label, fontsize=9)
        state.append((ax, seq, draw_skeleton(ax, seq[0]), _floor_lines(ax, seq[0, PELVIS, [0, 2]], floor_y)))
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=0.86, wspace=0.0)
    writer = PillowWriter(fps=max(1.0, float(fps)))
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp_gif = Path(tmp_dir) / "animation.gif"     # Pillow picks the format from the suffix
        with writer.saving(fig, str(tmp_gif), dpi):
            for f in range(t_len):
                for ax, seq, lines, floor in state:
                    center = seq[f, PELVIS, [0, 2]]
                    _setup_3d(ax, center, floor_y)
                    floor.set_segments(_floor_segments(center, floor_y))
                    for line, chain in zip(lines, KINEMATIC_CHAINS):
                        m = _to_mpl(seq[f, list(chain)])
                        line.set_data_3d(m[:, 0], m[:, 1], m[:, 2])
                writer.grab_frame()
        write_bytes(out_gif, tmp_gif.read_bytes())


def animate_comparison(gt: Any, recon: Any, out_gif: str | Path, fps: float, title: str | None = None,
                       labels: tuple[str, str] = ("ground truth", "reconstruction"), dpi: float = 60) -> None:
    """Side-by-side stick-figure GIF of a ground-truth and a reconstructed sequence.

    Args:
        gt, recon: (T, 22, 3) metres, y-up (the shorter length is used).
        out_gif: the .gif to write (atomically); at dpi 60 a 60-frame GIF is a few hundred kB.
        fps: playback rate.
    """
    _animate([(_as_joints(gt, "gt"), labels[0]), (_as_joints(recon, "recon"), labels[1])], out_gif, fps,
             title, dpi)


def animate_panels(panels: Sequence[tuple[Any, str]], out_gif: str | Path, fps: float, title: str | None = None,
                   dpi: float = 60) -> None:
    """Stick-figure GIF of several (T, 22, 3) sequences side by side, labelled (the shortest length is used)."""
    _animate([(_as_joints(j, label), label) for j, label in panels], out_gif, fps, title, dpi)


def animate_sequence(joints: Any, out_gif: str | Path, fps: float, title: str | None = None,
                     dpi: float = 60) -> None:
    """Stick-figure GIF of one (T, 22, 3) sequence."""
    _animate([(_as_joints(joints), title or "")], out_gif, fps, None, dpi)


def _load_npy_joints(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(path, f"unreadable .npy ({e})", "unreadable") from e
    if arr.ndim == 3 and arr.shape[1:] == (N_JOINTS, 3):
        return arr
    if arr.ndim == 2 and arr.shape[1] == 263:
        from flowmimic.features.humanml3d import features_to_joints

        return features_to_joints(torch.from_numpy(np.ascontiguousarray(arr))).numpy()
    raise DataError(path, f"expected joints (T, 22, 3) or features (T, 263), got shape {arr.shape}", "bad_shape")


def plot_sequence_file(input: str | Path, output: str | Path, params: Params, fps: float | None = None) -> None:
    """`flowmimic plot-sequence IN OUT`: plot (.png) or animate (.gif) a sequence from a file.

    Args:
        input: a joints .npy (T, 22, 3), a features .npy (T, 263), an AIST++ motion .pkl or a
            MVHumanNet sequence folder (read with `flowmimic.sources.read_sequence`, at data.fps).
        output: .png for `plot_sequence`, .gif for an animation (at most evaluate.gif_frames frames:
            long sequences are subsampled, played in real time).
        fps: frame rate of a .npy input (default data.fps); raw inputs carry their own.
    """
    input, output = Path(input), Path(output)
    kind = output.suffix.lower()
    if kind not in (".png", ".gif"):
        raise DataError(output, f"output must be a .png (plot) or a .gif (animation), got {kind or 'no suffix'!r}",
                        "invalid")
    if not input.exists():
        raise DataError(input, "file not found", "missing")
    if input.suffix == ".npy":
        joints = _load_npy_joints(input)
        rate = float(fps) if fps is not None else float(params.data.fps)
    else:
        from flowmimic.sources import read_sequence

        seq = read_sequence(input, params)
        joints, rate = seq.joints.numpy(), float(seq.fps)
    joints = _as_joints(joints)
    if kind == ".png":
        plot_sequence(joints, rate, output, title=input.name)
    else:
        stride = max(1, math.ceil(joints.shape[0] / params.evaluate.gif_frames))
        animate_sequence(joints[::stride], output, rate / stride, title=input.name)


__all__ = ["animate_comparison", "animate_sequence", "draw_skeleton", "plot_gallery", "plot_sequence", "plot_sequence_file"]
