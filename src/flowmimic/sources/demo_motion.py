"""Procedural human motion for the demo dataset: dances in the 10 AIST++ genres, calm studio actions.

Everything is built in the canonical frame (y-up metres, facing +z, the body's left on +x, SMPL
joint order) as SMPL axis-angle poses, so bone lengths are those of the rest skeleton by
construction. A motion is a set of named joint-angle channels over time (hip flexion, knee bend,
shoulder swing, heading, ...), each a (B, T) tensor for a batch of sequences; `_local_rotations`
turns the channels into per-joint local rotations.

Nothing here places the root directly. `plant_feet` runs forward kinematics with the pelvis at the
origin, then moves the root so that the lowest foot joint touches the floor (y = 0) and the
supporting foot does not slide: the root's horizontal velocity is minus the velocity of the foot
joints relative to the root, weighted by a soft-min over their heights (the lowest joint carries
the weight). Travel, turns about the stance foot and weight shifts all follow from the legs.

Dances (`synthesize_dances`) move on a beat grid. Each genre has a row in `_GENRE_TABLE` (stepping
rate, knee lift, travel, bounce, crouch, stance width, lean, arm amplitude and rate, waveform
sharpness, twist, chest pulse, head nods, kicks, turns) and weights over a small vocabulary of arm
and leg moves (`ARM_MOVES`, `LEG_MOVES`). A sequence is a chain of 4-beat bars, each with its own
moves and random details, cross-faded over the last beat of a bar; every dancer has personal
multipliers, and basic (sBM) sequences alternate two moves while advanced (sFM) ones vary more and
turn more. Studio actions (`synthesize_studio`, MVHumanNet-like) are calm: standing, waving,
raising the arms, turning around, a few steps, squats, arm circles; each starts and ends in the
neutral stance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from flowmimic.body.kinematics import smpl_forward_kinematics
from flowmimic.body.rotation import axis_angle_to_matrix, matrix_to_axis_angle
from flowmimic.body.skeleton import N_SMPL_JOINTS, SMPL_PARENTS
from flowmimic.sources.aist import GENRES

DTYPE = torch.float32
FOOT_JOINTS: tuple[int, ...] = (7, 10, 8, 11)   # left ankle, left toe base, right ankle, right toe base
CONTACT_SOFTNESS_M = 0.01       # height scale of the soft-min that picks the supporting foot joint
BAR_BEATS = 4                   # beats per bar: moves change at bar lines
CROSSFADE_BEATS = 1.0           # moves blend into the next bar's over this many beats

ARM_MOVES: tuple[str, ...] = ("swing", "pump", "open", "punch", "whip", "pose")
LEG_MOVES: tuple[str, ...] = ("bounce", "step", "travel", "kick", "sway")
STUDIO_ACTIONS: tuple[str, ...] = ("idle", "wave", "raise", "turn", "walk", "squat", "circles")

# ----------------------------------------------------------------------------- genre table
# Tempo: the AIST Dance DB has six pieces per genre (music ids 0..5) spanning 80-130 BPM, House
# 110-135 BPM (Tsuchida et al., ISMIR 2019); the demo maps music id 0..5 linearly onto that range.
TEMPO_RANGE: dict[str, tuple[float, float]] = {code: (80.0, 130.0) for code in GENRES} | {"gHO": (110.0, 135.0)}

# The movement character of each genre (a caricature, designed for this demo). Angles in radians.
#   step_rate: steps per beat; lift: knee lift of a step; sweep: leg sweep while travelling;
#   bounce: knee bend on the beat; crouch: base knee bend; width: stance width (hip abduction);
#   lean: forward torso lean; arm_amp / arm_rate: arm amplitude and cycles per beat;
#   sharp: waveform sharpness (0.2 a sine ... 8 a near square wave: hits and holds);
#   twist: torso twist; chest: chest pulse on the beat; head: head nod; kick: kick height;
#   turn_prob: chance of a turn at a bar line; turn_max: largest turn.
_STYLE_COLUMNS: tuple[str, ...] = (
    "step_rate", "lift", "sweep", "bounce", "crouch", "width", "lean", "arm_amp", "arm_rate", "sharp",
    "twist", "chest", "head", "kick", "turn_prob", "turn_max")
_PI = math.pi
_GENRE_TABLE: dict[str, tuple[float, ...]] = {
    #       step  lift  sweep bnce  crch  wdth  lean  arm   rate  shrp  twst  chst  head  kick  turn  tmax
    "gBR": (1.0, 0.45, 0.10, 0.15, 0.60, 0.16, 0.30, 0.8, 0.50, 1.5, 0.45, 0.05, 0.10, 0.9, 0.35, _PI),
    "gPO": (0.5, 0.30, 0.04, 0.25, 0.20, 0.10, 0.05, 0.9, 1.00, 8.0, 0.20, 0.20, 0.20, 0.6, 0.10, _PI / 2),
    "gLO": (1.0, 0.60, 0.06, 0.20, 0.25, 0.10, 0.10, 1.1, 1.00, 5.0, 0.25, 0.10, 0.15, 1.0, 0.15, _PI / 2),
    "gMH": (1.0, 0.35, 0.07, 0.40, 0.30, 0.12, 0.15, 0.8, 0.50, 1.5, 0.20, 0.15, 0.30, 0.6, 0.15, _PI / 2),
    "gLH": (1.0, 0.45, 0.12, 0.30, 0.30, 0.12, 0.15, 1.0, 0.50, 3.0, 0.35, 0.15, 0.20, 0.8, 0.30, _PI),
    "gHO": (2.0, 0.30, 0.12, 0.20, 0.30, 0.08, 0.25, 0.5, 0.50, 1.0, 0.15, 0.25, 0.15, 0.6, 0.25, _PI),
    "gWA": (0.5, 0.25, 0.05, 0.15, 0.12, 0.08, 0.00, 1.3, 2.00, 3.0, 0.10, 0.05, 0.10, 0.5, 0.20, _PI),
    "gKR": (0.5, 0.70, 0.05, 0.30, 0.45, 0.20, 0.35, 1.2, 1.00, 6.0, 0.30, 0.35, 0.20, 0.6, 0.10, _PI / 2),
    "gJS": (1.0, 0.45, 0.10, 0.15, 0.15, 0.08, 0.05, 1.0, 0.50, 0.5, 0.30, 0.10, 0.15, 1.1, 0.40, 2 * _PI),
    "gJB": (0.5, 0.60, 0.12, 0.05, 0.05, 0.05, -0.05, 1.1, 0.25, 0.2, 0.15, 0.05, 0.10, 1.4, 0.50, 2 * _PI),
}
# Weights of ARM_MOVES (swing, pump, open, punch, whip, pose) and LEG_MOVES (bounce, step, travel,
# kick, sway) per genre.
_ARM_WEIGHTS: dict[str, tuple[float, ...]] = {
    "gBR": (0.20, 0.10, 0.40, 0.20, 0.00, 0.10), "gPO": (0.05, 0.15, 0.10, 0.30, 0.00, 0.40),
    "gLO": (0.05, 0.35, 0.10, 0.40, 0.00, 0.10), "gMH": (0.45, 0.15, 0.15, 0.15, 0.00, 0.10),
    "gLH": (0.20, 0.15, 0.25, 0.30, 0.00, 0.10), "gHO": (0.50, 0.10, 0.20, 0.10, 0.00, 0.10),
    "gWA": (0.00, 0.10, 0.05, 0.05, 0.70, 0.10), "gKR": (0.10, 0.30, 0.20, 0.35, 0.00, 0.05),
    "gJS": (0.25, 0.25, 0.35, 0.05, 0.05, 0.05), "gJB": (0.05, 0.50, 0.35, 0.00, 0.05, 0.05),
}
_LEG_WEIGHTS: dict[str, tuple[float, ...]] = {
    "gBR": (0.10, 0.40, 0.30, 0.20, 0.00), "gPO": (0.50, 0.30, 0.05, 0.00, 0.15),
    "gLO": (0.20, 0.30, 0.10, 0.30, 0.10), "gMH": (0.45, 0.30, 0.10, 0.00, 0.15),
    "gLH": (0.20, 0.30, 0.30, 0.10, 0.10), "gHO": (0.05, 0.40, 0.45, 0.05, 0.05),
    "gWA": (0.40, 0.40, 0.10, 0.00, 0.10), "gKR": (0.30, 0.50, 0.05, 0.00, 0.15),
    "gJS": (0.15, 0.25, 0.30, 0.20, 0.10), "gJB": (0.05, 0.20, 0.30, 0.40, 0.05),
}
assert set(_GENRE_TABLE) == set(GENRES) == set(_ARM_WEIGHTS) == set(_LEG_WEIGHTS)

# The neutral standing pose (shoulder "down" lowers the arms from the T-pose; pi/2 hangs them).
_ARM_REST_DOWN, _ARM_REST_ELBOW = 1.30, 0.25


def genre_tempo(genre: str, music: int) -> float:
    """Tempo (BPM) of music piece `music` (0..5) of `genre` ('gBR', ...)."""
    lo, hi = TEMPO_RANGE[genre]
    return lo + (hi - lo) * music / 5.0


# ----------------------------------------------------------------------------- specs and results


@dataclass(frozen=True)
class DanceSpec:
    """One dance sequence to synthesise."""

    genre: str          # AIST++ genre code, 'gBR' ...
    dancer_seed: int    # seeds the dancer's personal style (same dancer -> same style)
    advanced: bool      # sFM (advanced, more varied) or sBM (basic, two alternating moves)
    bpm: float
    seconds: float
    seed: int           # seeds everything specific to this sequence


@dataclass(frozen=True)
class StudioSpec:
    """One MVHumanNet-like studio sequence to synthesise."""

    performer_seed: int  # seeds body scale and personal pace
    seconds: float
    seed: int


@dataclass(frozen=True)
class MotionBatch:
    """Synthesised sequences, padded to a common length (frames past `lengths[b]` are padding).

    poses: (B, T, 24, 3) SMPL axis-angle in the canonical frame (joint 0 = global orientation).
    transl: (B, T, 3) SMPL translation: joints = FK(poses, rest, transl).
    joints: (B, T, 24, 3) canonical joints, metres, floor at y = 0.
    rest: (B, 24, 3) rest skeleton of each sequence.
    lengths: (B,) frames of each sequence.
    fps: frame rate.
    """

    poses: Tensor
    transl: Tensor
    joints: Tensor
    rest: Tensor
    lengths: Tensor
    fps: float

    def sequence(self, b: int) -> tuple[Tensor, Tensor, Tensor]:
        """(poses (T,24,3), transl (T,3), joints (T,24,3)) of sequence b without its padding."""
        n = int(self.lengths[b])
        return self.poses[b, :n], self.transl[b, :n], self.joints[b, :n]


# ----------------------------------------------------------------------------- small helpers


def _uniform(g: torch.Generator, lo: float, hi: float, *shape: int) -> Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=DTYPE)


def _lognormal(g: torch.Generator, sigma: float, *shape: int) -> Tensor:
    return torch.exp(sigma * torch.randn(shape, generator=g, dtype=DTYPE))


def _smoothstep(x: Tensor) -> Tensor:
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _wave(x: Tensor, sharp: Tensor) -> Tensor:
    """A periodic wave in [-1, 1]: a sine for small `sharp`, towards a square wave (hits, holds) for large."""
    return torch.tanh(sharp * torch.sin(x)) / torch.tanh(sharp)


def _hit(beats: Tensor, attack: float = 0.1) -> Tensor:
    """A fast-attack, decaying accent after every beat, in [0, 1], peaking `attack` beats after it."""
    f = torch.remainder(beats, 1.0) / attack
    return f * torch.exp(1.0 - f)


def _stack_plans(plans: list[dict[str, Tensor]], fill: dict[str, float]) -> dict[str, Tensor]:
    """Stack per-sequence plans: scalars to (B,), per-bar/segment rows (S_i, ...) to (B, max S, ...).

    Rows are padded with `fill[key]`, or by repeating their last row for keys not in `fill`.
    """
    out = {}
    for key in plans[0]:
        rows = [pl[key] for pl in plans]
        if rows[0].dim() == 0:
            out[key] = torch.stack(rows)
            continue
        s = max(r.shape[0] for r in rows)
        padded = []
        for r in rows:
            pad = (r.new_full((s - r.shape[0], *r.shape[1:]), fill[key]) if key in fill
                   else r[-1:].expand(s - r.shape[0], *r.shape[1:]))
            padded.append(torch.cat([r, pad]))
        out[key] = torch.stack(padded)
    return out


def _bar_values(values: Tensor, bar_pos: Tensor) -> Tensor:
    """Per-frame values of per-bar quantities, cross-faded into the next bar over its last beat.

    values: (B, S, ...) one entry per bar; bar_pos: (B, T) position in bars (>= 0).
    Returns (B, T, ...).
    """
    s = values.shape[1]
    k = bar_pos.floor().clamp(0, s - 2).long()
    fade = _smoothstep((bar_pos - k - 1.0 + CROSSFADE_BEATS / BAR_BEATS) / (CROSSFADE_BEATS / BAR_BEATS))
    extra = values.dim() - 2
    idx = k.reshape(*k.shape, *([1] * extra)).expand(*k.shape, *values.shape[2:])
    a = torch.gather(values, 1, idx)
    b = torch.gather(values, 1, idx + 1)
    fade = fade.reshape(*fade.shape, *([1] * extra))
    return a + (b - a) * fade


def _axis_rot(angle: Tensor, axis: int) -> Tensor:
    """(...,) angles -> (..., 3, 3) rotations about the x (0), y (1) or z (2) axis."""
    aa = torch.zeros(*angle.shape, 3, dtype=angle.dtype)
    aa[..., axis] = angle
    return axis_angle_to_matrix(aa)


def _rx(a: Tensor) -> Tensor:
    return _axis_rot(a, 0)


def _ry(a: Tensor) -> Tensor:
    return _axis_rot(a, 1)


def _rz(a: Tensor) -> Tensor:
    return _axis_rot(a, 2)


# ----------------------------------------------------------------------------- channels -> pose

# Channel names (each a (B, T) tensor). Per side: _l / _r. Signs are anatomical, mirrored for the
# right side by `_local_rotations`, except `lat` (toward the body's left, +x, for both legs).
CHANNELS: tuple[str, ...] = (
    "heading",                                   # yaw of the whole body about +y
    "lean", "side", "twist",                     # spine: forward lean, side bend to the left, twist to the left
    "nod", "look",                               # head: nod down, turn to the left
    "shrug",                                     # both collars up
    "flex_l", "flex_r", "abd_l", "abd_r",        # hips: thigh forward, thigh outward
    "knee_l", "knee_r", "point_l", "point_r",    # knee bend; toes pointed beyond a flat foot
    "down_l", "down_r", "swing_l", "swing_r",    # shoulder: lower from the T-pose; swing forward (sagittal)
    "open_l", "open_r", "tw_l", "tw_r",          # shoulder: open a forward arm outward; twist about the arm
    "elbow_l", "elbow_r", "wrist_l", "wrist_r",
)


def _neutral_channels(shape: tuple[int, int]) -> dict[str, Tensor]:
    ch = {name: torch.zeros(shape, dtype=DTYPE) for name in CHANNELS}
    for s in ("l", "r"):
        ch[f"down_{s}"] += _ARM_REST_DOWN
        ch[f"elbow_{s}"] += _ARM_REST_ELBOW
        ch[f"swing_{s}"] += 0.05
        ch[f"abd_{s}"] += 0.04
    return ch


def _local_rotations(ch: dict[str, Tensor]) -> Tensor:
    """Channels (each (B, T)) -> local joint rotations (B, T, 24, 3, 3), canonical rest frames.

    Axes (rest frames are aligned with the canonical frame): a thigh swings forward under a negative
    x rotation, a knee bends under a positive one; a left arm (along +x) lowers under a negative z
    rotation. The right side mirrors the left through the x = 0 plane (axis-angle (x, y, z) ->
    (x, -y, -z)), so its y and z rotations change sign.
    """
    b, t = ch["heading"].shape
    eye = torch.eye(3, dtype=DTYPE).expand(b, t, N_SMPL_JOINTS, 3, 3).clone()
    rot = list(eye.unbind(dim=2))
    rot[0] = _ry(ch["heading"])
    for side, sign, hip, knee, ankle in (("l", 1.0, 1, 4, 7), ("r", -1.0, 2, 5, 8)):
        flex, k = ch[f"flex_{side}"], ch[f"knee_{side}"]
        abd = ch[f"abd_{side}"]
        rot[hip] = _rz(sign * abd) @ _rx(-flex)
        rot[knee] = _rx(k)
        # A flat foot needs the ankle to undo the shin's pitch (thigh pitch minus knee bend).
        rot[ankle] = _rx(flex - k + ch[f"point_{side}"])
    for joint, share in ((3, 0.4), (6, 0.3), (9, 0.3)):
        rot[joint] = _rx(share * ch["lean"]) @ _rz(-share * ch["side"]) @ _ry(share * ch["twist"])
    # The neck and head keep the gaze level against the spine's lean, then nod and turn.
    for joint in (12, 15):
        rot[joint] = _rx(0.5 * (ch["nod"] - 0.6 * ch["lean"])) @ _ry(0.5 * ch["look"])
    rot[13], rot[14] = _rz(ch["shrug"]), _rz(-ch["shrug"])
    for side, sign, shoulder, elbow, wrist in (("l", 1.0, 16, 18, 20), ("r", -1.0, 17, 19, 21)):
        rot[shoulder] = (_ry(sign * ch[f"open_{side}"]) @ _rx(-ch[f"swing_{side}"])
                         @ _rz(-sign * ch[f"down_{side}"]) @ _rx(ch[f"tw_{side}"]))
        rot[elbow] = _ry(-sign * ch[f"elbow_{side}"])
        rot[wrist] = _rz(-sign * ch[f"wrist_{side}"])
    return torch.stack(rot, dim=2)


# ----------------------------------------------------------------------------- feet on the floor


def plant_feet(rel_joints: Tensor, start_xz: Tensor) -> Tensor:
    """Root positions that keep the lowest foot joint on the floor and the supporting foot still.

    Args:
        rel_joints: (B, T, J, 3) joints with the pelvis at the origin (orientation included).
        start_xz: (B, 2) horizontal root position at frame 0.
    Returns:
        (B, T, 3) pelvis positions; `rel_joints + root[..., None, :]` stands on y = 0.
    """
    feet = rel_joints[..., FOOT_JOINTS, :]                                   # (B, T, 4, 3)
    heights = feet[..., 1]
    weight = torch.softmax(-heights / CONTACT_SOFTNESS_M, dim=-1)           # who carries the body
    step = feet[:, 1:, :, ::2] - feet[:, :-1, :, ::2]                        # (B, T-1, 4, 2) xz
    w_mid = 0.5 * (weight[:, 1:] + weight[:, :-1])
    root_step = -(w_mid[..., None] * step).sum(dim=-2)                       # (B, T-1, 2)
    xz = torch.cat([start_xz[:, None], start_xz[:, None] + torch.cumsum(root_step, dim=1)], dim=1)
    y = -heights.min(dim=-1).values
    return torch.stack([xz[..., 0], y, xz[..., 1]], dim=-1)


def _finish(ch: dict[str, Tensor], rest: Tensor, start_xz: Tensor, lengths: Tensor, fps: float) -> MotionBatch:
    """Channels -> poses, planted root, joints."""
    poses = matrix_to_axis_angle(_local_rotations(ch))                      # (B, T, 24, 3)
    rest_b = rest[:, None]                                                   # (B, 1, 24, 3)
    rel = smpl_forward_kinematics(poses, rest_b, -rest_b[..., 0, :])       # pelvis at the origin
    root = plant_feet(rel, start_xz)
    joints = rel + root[..., None, :]
    transl = root - rest[:, None, 0, :]
    return MotionBatch(poses=poses, transl=transl, joints=joints, rest=rest, lengths=lengths, fps=fps)


# ----------------------------------------------------------------------------- dances


def _dancer_traits(seed: int) -> dict[str, Tensor]:
    """A dancer's personal style: multipliers and offsets on the genre's row, move preferences."""
    g = torch.Generator().manual_seed(seed)
    return {
        "arm_amp": _lognormal(g, 0.15), "lift": _lognormal(g, 0.15), "bounce": _lognormal(g, 0.2),
        "twist": _lognormal(g, 0.2), "sweep": _lognormal(g, 0.2), "sharp": _lognormal(g, 0.25),
        "crouch": _uniform(g, -0.08, 0.08), "lean": _uniform(g, -0.06, 0.06), "width": _uniform(g, -0.03, 0.03),
        "arm_pref": _lognormal(g, 0.5, len(ARM_MOVES)), "leg_pref": _lognormal(g, 0.5, len(LEG_MOVES)),
    }


def _choose_moves(g: torch.Generator, weights: Tensor, n_bars: int, advanced: bool) -> Tensor:
    """(n_bars,) move indices: advanced dances draw each bar, basic ones alternate two moves."""
    if advanced:
        return torch.multinomial(weights, n_bars, replacement=True, generator=g)
    pair = torch.multinomial(weights, 2, replacement=bool(weights.count_nonzero() < 2), generator=g)
    return pair[(torch.arange(n_bars) // 2) % 2]


def _dance_plan(spec: DanceSpec) -> dict[str, Tensor]:
    """Per-sequence scalars (shape ()) and per-bar values (shape (S, ...)) of one dance."""
    if spec.genre not in _GENRE_TABLE:
        raise ValueError(f"unknown genre {spec.genre!r}; expected one of {GENRES}")
    g = torch.Generator().manual_seed(spec.seed)
    row = dict(zip(_STYLE_COLUMNS, torch.tensor(_GENRE_TABLE[spec.genre], dtype=DTYPE).unbind()))
    me = _dancer_traits(spec.dancer_seed)
    n_bars = int(math.ceil(spec.seconds * spec.bpm / 60.0 / BAR_BEATS)) + 2
    vivid = 1.1 if spec.advanced else 1.0
    plan: dict[str, Tensor] = {
        "bpm": torch.tensor(spec.bpm, dtype=DTYPE),
        "beat0": _uniform(g, 0.0, 1.0),
        "heading0": _uniform(g, -0.5, 0.5),
        "start_xz": _uniform(g, -0.5, 0.5, 2),
        "step_rate": row["step_rate"],
        "lift": row["lift"] * me["lift"] * vivid,
        "bounce": row["bounce"] * me["bounce"],
        "crouch": (row["crouch"] + me["crouch"]).clamp_min(0.02),
        "width": (row["width"] + me["width"]).clamp_min(0.02),
        "lean": row["lean"] + me["lean"],
        "arm_amp": row["arm_amp"] * me["arm_amp"] * vivid,
        "arm_rate": row["arm_rate"],
        "sharp": (row["sharp"] * me["sharp"]).clamp(0.2, 10.0),
        "twist": row["twist"] * me["twist"],
        "chest": row["chest"],
        "head": row["head"],
        "kick": row["kick"],
    }
    arm_w = torch.tensor(_ARM_WEIGHTS[spec.genre], dtype=DTYPE) * me["arm_pref"]
    leg_w = torch.tensor(_LEG_WEIGHTS[spec.genre], dtype=DTYPE) * me["leg_pref"]
    plan["arm_move"] = torch.nn.functional.one_hot(_choose_moves(g, arm_w, n_bars, spec.advanced),
                                                   len(ARM_MOVES)).to(DTYPE)
    plan["leg_move"] = torch.nn.functional.one_hot(_choose_moves(g, leg_w, n_bars, spec.advanced),
                                                   len(LEG_MOVES)).to(DTYPE)
    plan["bar_amp"] = _uniform(g, 0.75, 1.25, n_bars)
    plan["lead"] = torch.where(torch.rand(n_bars, generator=g) < 0.5, -1.0, 1.0).to(DTYPE)
    direction = _uniform(g, -math.pi, math.pi, n_bars)
    sweep = row["sweep"] * me["sweep"] * _uniform(g, 0.6, 1.2, n_bars)
    plan["travel"] = torch.stack([sweep * torch.cos(direction), sweep * torch.sin(direction)], dim=-1)
    plan["reach"] = _uniform(g, 1.0, 2.6, n_bars)          # punch height (shoulder swing)
    plan["raise"] = _uniform(g, 0.6, 1.0, n_bars)          # pump height
    plan["look"] = _uniform(g, -0.4, 0.4, n_bars)
    # pose: (down, swing, open, twist, elbow) per side
    lo = torch.tensor([-0.9, -0.2, -0.3, -1.2, 0.0], dtype=DTYPE)
    hi = torch.tensor([1.4, 1.6, 0.9, 0.3, 2.0], dtype=DTYPE)
    plan["pose"] = lo + (hi - lo) * torch.rand(n_bars, 2, 5, generator=g, dtype=DTYPE)
    # Turns at bar lines: mostly back towards the front, an angle up to the genre's largest turn,
    # over one or two beats.
    turn_prob = row["turn_prob"] * (1.0 if spec.advanced else 0.5)
    turns = torch.zeros(n_bars, dtype=DTYPE)
    facing = 0.0
    for k in range(1, n_bars):
        if float(torch.rand((), generator=g)) < float(turn_prob):
            size = float(row["turn_max"]) * float(_uniform(g, 0.5, 1.0))
            toward_front = -math.copysign(1.0, facing) if facing != 0.0 else 1.0
            sign = toward_front if float(torch.rand((), generator=g)) < 0.7 else -toward_front
            turns[k] = sign * size
            facing = math.remainder(facing + turns[k].item(), 2 * math.pi)
    plan["turn"] = turns
    plan["turn_beats"] = torch.where(torch.rand(n_bars, generator=g) < 0.5, 1.0, 2.0).to(DTYPE)
    return plan


def _dance_channels(p: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
    """Channels (B, T) of a batch of dances from their stacked plans `p` and times `t` (T,) seconds."""
    col = {k: v[:, None] for k, v in p.items() if v.dim() == 1}           # (B, 1) scalars
    beats = t[None, :] * col["bpm"] / 60.0 + col["beat0"]                   # (B, T)
    bars = beats / BAR_BEATS
    arm_w = _bar_values(p["arm_move"], bars)                                # (B, T, 6)
    leg_w = _bar_values(p["leg_move"], bars)                                # (B, T, 5)
    amp = _bar_values(p["bar_amp"], bars)
    lead = _bar_values(p["lead"], bars)
    travel = _bar_values(p["travel"], bars)                                 # (B, T, 2)
    sharp = col["sharp"]
    ch = _neutral_channels(tuple(beats.shape))
    two_pi = 2 * math.pi

    # Heading: the start heading plus every turn so far, each spread over its own beats.
    starts = torch.arange(p["turn"].shape[1], dtype=DTYPE) * BAR_BEATS      # (S,) beat of each bar line
    progress = (beats[..., None] - starts) / p["turn_beats"][:, None, :]      # (B, T, S)
    ch["heading"] = col["heading0"] + (p["turn"][:, None, :] * _smoothstep(progress)).sum(-1)

    # --- legs: every move is a function of the beat; the bar weights blend them.
    down_beat = 0.5 + 0.5 * _wave(two_pi * beats + math.pi / 2, sharp)      # 1 on the beat (knees bent)
    knee_base = col["crouch"] + col["bounce"] * amp * down_beat
    psi = math.pi * col["step_rate"] * beats                                # one left+right step cycle per 2 steps
    step_wave = _wave(psi, sharp.clamp(max=3.0))
    lift = {"l": step_wave.clamp_min(0) ** 1.2, "r": (-step_wave).clamp_min(0) ** 1.2}
    sweep_phase = {"l": -torch.cos(psi), "r": torch.cos(psi)}               # front -> back while in stance
    height = col["lift"] * amp
    kick_leg = {"l": 0.5 * (1 + lead), "r": 0.5 * (1 - lead)}
    sway = 0.12 * amp * _wave(math.pi * beats, sharp)                       # weight shift, one side per beat
    for s, sgn in (("l", 1.0), ("r", -1.0)):
        step_flex = 0.3 * knee_base + height * lift[s]
        step_knee = 0.6 * knee_base + 2.0 * height * lift[s]
        kick_flex = 0.3 * knee_base + col["kick"] * amp * lift[s]
        kick_knee = 0.6 * knee_base + 2.2 * lift[s] * (1 - lift[s])
        flex = torch.stack([
            0.5 * knee_base,                                                # bounce
            step_flex,                                                      # step
            step_flex + travel[..., 0] * sweep_phase[s],                    # travel
            kick_leg[s] * kick_flex + (1 - kick_leg[s]) * step_flex,       # kick
            0.5 * knee_base,                                                # sway
        ], dim=-1)
        knee = torch.stack([
            knee_base, step_knee, step_knee,
            kick_leg[s] * kick_knee + (1 - kick_leg[s]) * step_knee,
            knee_base + 0.3 * (sgn * sway / 0.12).clamp_min(0),            # the unloaded leg bends
        ], dim=-1)
        lat = torch.stack([
            torch.zeros_like(beats), torch.zeros_like(beats), travel[..., 1] * sweep_phase[s],
            torch.zeros_like(beats), sway,
        ], dim=-1)                                                           # toward +x, both legs
        point = torch.stack([
            torch.zeros_like(beats), 0.4 * height * lift[s], 0.4 * height * lift[s],
            (0.6 * kick_leg[s] + 0.4 * height * (1 - kick_leg[s])) * lift[s], torch.zeros_like(beats),
        ], dim=-1)
        ch[f"flex_{s}"] = (leg_w * flex).sum(-1)
        ch[f"knee_{s}"] = (leg_w * knee).sum(-1)
        ch[f"abd_{s}"] = col["width"] + sgn * (leg_w * lat).sum(-1)
        ch[f"point_{s}"] = (leg_w * point).sum(-1)

    # --- torso and head
    ch["lean"] = col["lean"] + 0.3 * knee_base + col["chest"] * amp * (down_beat - 0.5)
    ch["twist"] = col["twist"] * amp * lead * _wave(0.5 * math.pi * beats, sharp)
    ch["side"] = 0.3 * col["twist"] * amp * _wave(math.pi * beats + 0.5, sharp) - 0.5 * (leg_w[..., 4] * sway)
    ch["nod"] = col["head"] * amp * (down_beat - 0.5)
    ch["look"] = _bar_values(p["look"], bars) - 0.5 * ch["twist"]
    ch["shrug"] = 0.3 * col["chest"] * amp * down_beat

    # --- arms
    a = col["arm_amp"] * amp
    theta = two_pi * col["arm_rate"] * beats
    w = _wave(theta, sharp)
    punch = _wave(math.pi * beats, sharp) * lead
    reach = _bar_values(p["reach"], bars)
    raise_h = _bar_values(p["raise"], bars)
    pose = _bar_values(p["pose"], bars)                                     # (B, T, 2, 5)
    hit = _hit(beats)
    for i, (s, sgn) in enumerate((("l", 1.0), ("r", -1.0))):
        pump = a * raise_h * (0.5 + 0.5 * w)
        opening = (0.9 * a * (0.5 + 0.5 * w)).clamp(max=1.3)
        jab = (sgn * punch).clamp_min(0)
        circle = theta + (0.0 if s == "l" else math.pi)
        wa = a.clamp(max=1.4)
        moves = {   # per arm move: (down, swing, open, tw, elbow)
            "swing": (torch.full_like(w, 1.25), 0.15 + sgn * 0.7 * a * w * lead, 0 * w, 0 * w,
                      0.5 + 0.4 * a * (0.5 + 0.5 * sgn * w * lead)),
            "pump": (1.3 - 2.3 * pump, 0.25 + 0 * w, 0 * w, -0.8 * pump, 0.2 + 1.2 * (1 - pump / a.clamp_min(1e-6))),
            "open": (torch.full_like(w, math.pi / 2), torch.full_like(w, 1.35), opening, 0 * w,
                     0.3 + 0.3 * (1 - opening)),
            "punch": (1.35 - 0.35 * jab, 0.3 + reach * a.clamp(max=1.0) * jab, -0.25 * jab, 0 * w, 1.9 - 1.7 * jab),
            "whip": (-0.3 + 0.7 * wa * torch.cos(circle), 0.6 + 0.7 * wa * torch.sin(circle), 0 * w,
                     torch.full_like(w, -0.5), 0.4 + 0.8 * (0.5 + 0.5 * torch.sin(circle + 1.0))),
            "pose": (pose[..., i, 0] - 0.15 * a * hit, pose[..., i, 1], pose[..., i, 2], pose[..., i, 3],
                     pose[..., i, 4] + 0.2 * hit),
        }
        parts = torch.stack([torch.stack(moves[m], dim=-1) for m in ARM_MOVES], dim=-2)   # (B, T, 6, 5)
        down, swing, opn, tw, elbow = (arm_w[..., None] * parts).sum(-2).unbind(-1)
        ch[f"down_{s}"], ch[f"swing_{s}"], ch[f"open_{s}"], ch[f"tw_{s}"] = down, swing, opn, tw
        ch[f"elbow_{s}"] = elbow.clamp_min(0.0)
        ch[f"wrist_{s}"] = 0.25 * a * _wave(theta + 1.0, sharp)
    return ch


def synthesize_dances(specs: list[DanceSpec], rest: Tensor, fps: float) -> MotionBatch:
    """Dance sequences (one per spec), batched.

    Args:
        specs: what to dance; each sequence depends only on its own spec.
        rest: (24, 3) rest joints (the skeleton the poses drive; AIST++ dancers share one).
        fps: frame rate of the result.
    Returns:
        `MotionBatch` with B = len(specs), canonical frame, floor at y = 0.
    """
    if not specs:
        raise ValueError("no dance specs given")
    # Bars past a sequence's end repeat its last bar (they start after its last frame).
    p = _stack_plans([_dance_plan(s) for s in specs], fill={})
    lengths = torch.tensor([max(2, int(round(s.seconds * fps))) for s in specs])
    t = torch.arange(int(lengths.max()), dtype=DTYPE) / fps
    ch = _dance_channels(p, t)
    rest_b = rest.to(DTYPE).expand(len(specs), N_SMPL_JOINTS, 3)
    return _finish(ch, rest_b, p["start_xz"], lengths, fps)


# ----------------------------------------------------------------------------- studio actions

_ACTION_WEIGHTS = (0.10, 0.16, 0.16, 0.15, 0.18, 0.15, 0.10)   # STUDIO_ACTIONS
_ACTION_SECONDS = (2.5, 5.0)


def _studio_plan(spec: StudioSpec) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(spec.seed)
    me = torch.Generator().manual_seed(spec.performer_seed)
    pace = _lognormal(me, 0.1)
    # Segments: a short idle start, then actions until the sequence is filled.
    starts, kinds = [0.0], [0]
    t = float(_uniform(g, 0.8, 1.6))
    weights = torch.tensor(_ACTION_WEIGHTS, dtype=DTYPE)
    while t < spec.seconds:
        starts.append(t)
        kinds.append(int(torch.multinomial(weights, 1, generator=g)))
        t += float(_uniform(g, *_ACTION_SECONDS))
    n = len(starts)
    starts_t = torch.tensor(starts + [max(t, spec.seconds) + 1.0], dtype=DTYPE)
    return {
        "scale": _uniform(me, 0.92, 1.08), "pace": pace, "heading0": _uniform(g, -math.pi, math.pi),
        "start_xz": _uniform(g, -0.3, 0.3, 2), "sway_phase": _uniform(g, 0, 2 * math.pi),
        "seg_start": starts_t[:-1], "seg_dur": starts_t[1:] - starts_t[:-1],
        "kind": torch.nn.functional.one_hot(torch.tensor(kinds), len(STUDIO_ACTIONS)).to(DTYPE),
        "side": torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(DTYPE),
        "reps": torch.randint(1, 3, (n,), generator=g).to(DTYPE),
        "variant": torch.rand(n, generator=g, dtype=DTYPE),
        "turn": torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(DTYPE) * math.pi
        * torch.where(torch.rand(n, generator=g) < 0.3, 2.0, 1.0).to(DTYPE),
        "walk_back": (torch.rand(n, generator=g) < 0.6).to(DTYPE),
    }


def _studio_channels(p: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
    col = {k: v[:, None] for k, v in p.items() if v.dim() == 1}
    tt = t[None, :].expand(p["seg_start"].shape[0], -1)                       # (B, T)
    seg = (torch.searchsorted(p["seg_start"].contiguous(), tt.contiguous(), right=True) - 1).clamp_min(0)

    def at(v: Tensor) -> Tensor:
        return torch.gather(v, 1, seg) if v.dim() == 2 else torch.gather(
            v, 1, seg[..., None].expand(*seg.shape, v.shape[-1]))

    start, dur = at(p["seg_start"]), at(p["seg_dur"])
    u = ((tt - start) / dur).clamp(0, 1)                                      # progress through the action
    ramp = (0.9 / dur).clamp(max=0.3)
    env = _smoothstep(u / ramp) * _smoothstep((1 - u) / ramp)                # 0 at both ends of an action
    kind = at(p["kind"])                                                      # (B, T, A) one-hot
    k = {name: kind[..., i] * env for i, name in enumerate(STUDIO_ACTIONS)}
    side, reps, variant = at(p["side"]), at(p["reps"]), at(p["variant"])
    pace = col["pace"]
    ch = _neutral_channels(tuple(tt.shape))
    two_pi = 2 * math.pi

    # Always: breathing, a slow weight shift, looking around.
    sway = 0.035 * torch.sin(two_pi * 0.2 * pace * tt + col["sway_phase"])
    ch["lean"] = ch["lean"] + 0.02 * torch.sin(two_pi * 0.25 * tt) + 0.02
    ch["look"] = 0.35 * torch.sin(two_pi * 0.07 * tt + col["sway_phase"]) * k["idle"]
    ch["nod"] = 0.1 * torch.sin(two_pi * 0.11 * tt) * k["idle"]
    for s, sgn in (("l", 1.0), ("r", -1.0)):
        ch[f"abd_{s}"] = ch[f"abd_{s}"] + sgn * sway

    # Heading: start, plus every finished or running turn (turn actions and walking back).
    progress = (tt[..., None] - p["seg_start"][:, None, :]) / p["seg_dur"][:, None, :]     # (B, T, S)
    turn_kind = p["kind"][..., STUDIO_ACTIONS.index("turn")][:, None, :]
    walk_kind = p["kind"][..., STUDIO_ACTIONS.index("walk")][:, None, :]
    turning = turn_kind * p["turn"][:, None, :] * _smoothstep((progress - 0.15) / 0.7)
    walking_back = walk_kind * p["walk_back"][:, None, :] * math.pi * _smoothstep((progress - 0.4) / 0.2)
    ch["heading"] = col["heading0"] + (turning + walking_back).sum(-1)

    # Stepping (turn, walk): alternating lifts, and a sweep of the stance leg when walking.
    psi = math.pi * 1.6 * pace * (tt - start)
    step_w = torch.sin(psi)
    lift = {"l": step_w.clamp_min(0), "r": (-step_w).clamp_min(0)}
    sweep = {"l": -torch.cos(psi), "r": torch.cos(psi)}
    stepping = k["turn"] + k["walk"]
    squat = k["squat"] * (0.5 - 0.5 * torch.cos(two_pi * reps * u)) * (0.8 + 0.6 * variant)
    for s in ("l", "r"):
        ch[f"flex_{s}"] = (ch[f"flex_{s}"] + stepping * 0.35 * lift[s] + k["walk"] * 0.22 * sweep[s]
                           + 0.55 * squat + 0.03)
        ch[f"knee_{s}"] = ch[f"knee_{s}"] + stepping * 0.7 * lift[s] + squat + 0.06
        ch[f"point_{s}"] = ch[f"point_{s}"] + stepping * 0.15 * lift[s]
    ch["lean"] = ch["lean"] + 0.35 * squat + 0.05 * k["walk"]

    # Arms. wave: one arm up, forearm up and waving; raise: both arms up sideways or in front;
    # circles: both arms out to the sides drawing circles; squat/walk: arms forward / swinging.
    wave_arm = {"l": 0.5 * (1 + side), "r": 0.5 * (1 - side)}
    raise_amt = k["raise"] * (0.5 - 0.5 * torch.cos(two_pi * reps * u))
    front = (variant < 0.5).to(DTYPE)
    circles = k["circles"]
    for s, sgn in (("l", 1.0), ("r", -1.0)):
        wv = k["wave"] * wave_arm[s]
        ch[f"down_{s}"] = (ch[f"down_{s}"] + wv * (-0.25 - _ARM_REST_DOWN)
                           + raise_amt * (1 - front) * (-1.3 - _ARM_REST_DOWN)
                           + circles * (0.1 * torch.cos(two_pi * 0.8 * tt) - _ARM_REST_DOWN))
        ch[f"tw_{s}"] = ch[f"tw_{s}"] - 1.4 * wv
        ch[f"elbow_{s}"] = (ch[f"elbow_{s}"] + wv * (1.35 + 0.35 * torch.sin(two_pi * 2.0 * tt))
                            - 0.2 * circles - 0.15 * raise_amt)
        ch[f"swing_{s}"] = (ch[f"swing_{s}"] + raise_amt * front * 2.9 + 1.3 * squat
                            + circles * 0.25 * torch.sin(two_pi * 0.8 * tt)
                            + k["walk"] * 0.3 * sgn * torch.sin(psi))
    return ch


def synthesize_studio(specs: list[StudioSpec], rest: Tensor, fps: float) -> MotionBatch:
    """MVHumanNet-like studio sequences (one per spec), batched.

    Args:
        specs: what to perform; each performer's body is `rest` scaled by a per-performer factor.
        rest: (24, 3) rest joints before scaling.
        fps: frame rate of the result.
    Returns:
        `MotionBatch` with B = len(specs), canonical frame, floor at y = 0; `rest` holds each
        sequence's scaled skeleton.
    """
    if not specs:
        raise ValueError("no studio specs given")
    # Padding segments never start (start 1e9) and do nothing (no action, no turn).
    fill = {"seg_start": 1e9, "seg_dur": 1.0, "kind": 0.0, "side": 1.0, "reps": 1.0, "variant": 0.0,
            "turn": 0.0, "walk_back": 0.0, "start_xz": 0.0}
    p = _stack_plans([_studio_plan(s) for s in specs], fill)
    lengths = torch.tensor([max(2, int(round(s.seconds * fps))) for s in specs])
    t = torch.arange(int(lengths.max()), dtype=DTYPE) / fps
    ch = _studio_channels(p, t)
    rest64 = rest.to(DTYPE)
    rest_b = rest64[0] + (rest64 - rest64[0]) * p["scale"][:, None, None]   # scaled about the pelvis
    return _finish(ch, rest_b, p["start_xz"], lengths, fps)


# ----------------------------------------------------------------------------- 45 SMPL joints

# SMPL's 21 extra keypoints (after its 24 joints, in smplx's order: face, feet, fingertips), each
# as (parent joint, offset from it in the rest frame, metres for the built-in 1.7 m skeleton).
# Approximate positions chosen for the demo: nose/eyes/ears around the head joint, toes and heels
# around the foot and ankle joints, fingertips past the hand joints.
EXTRA_KEYPOINTS: tuple[tuple[str, int, tuple[float, float, float]], ...] = (
    ("nose", 15, (0.0, 0.02, 0.10)),
    ("right_eye", 15, (-0.032, 0.06, 0.085)), ("left_eye", 15, (0.032, 0.06, 0.085)),
    ("right_ear", 15, (-0.075, 0.03, -0.01)), ("left_ear", 15, (0.075, 0.03, -0.01)),
    ("left_big_toe", 10, (-0.025, -0.005, 0.055)), ("left_small_toe", 10, (0.035, -0.005, 0.04)),
    ("left_heel", 7, (0.005, -0.06, -0.06)),
    ("right_big_toe", 11, (0.025, -0.005, 0.055)), ("right_small_toe", 11, (-0.035, -0.005, 0.04)),
    ("right_heel", 8, (-0.005, -0.06, -0.06)),
    ("left_thumb", 22, (0.05, -0.01, 0.05)), ("left_index", 22, (0.10, 0.0, 0.03)),
    ("left_middle", 22, (0.11, 0.0, 0.01)), ("left_ring", 22, (0.10, 0.0, -0.01)),
    ("left_pinky", 22, (0.085, 0.0, -0.03)),
    ("right_thumb", 23, (-0.05, -0.01, 0.05)), ("right_index", 23, (-0.10, 0.0, 0.03)),
    ("right_middle", 23, (-0.11, 0.0, 0.01)), ("right_ring", 23, (-0.10, 0.0, -0.01)),
    ("right_pinky", 23, (-0.085, 0.0, -0.03)),
)
N_SMPL45 = N_SMPL_JOINTS + len(EXTRA_KEYPOINTS)
_BUILTIN_LEG_M = 0.393623 + 0.432433   # thigh + shin of the built-in skeleton (skeleton.TARGET_BONE_LENGTHS)


def smpl45_joints(poses: Tensor, rest: Tensor, transl: Tensor) -> Tensor:
    """SMPL's 45 joints (24 + 21 extra keypoints, see `EXTRA_KEYPOINTS`) by forward kinematics.

    Args:
        poses: (..., 24, 3) axis-angle; rest: (24, 3) or (..., 24, 3); transl: (..., 3).
    Returns:
        (..., 45, 3); the first 24 equal `smpl_forward_kinematics(poses, rest, transl)`.
    """
    rest = rest.to(poses.dtype)
    leg = (rest[..., 4, :] - rest[..., 1, :]).norm(dim=-1) + (rest[..., 7, :] - rest[..., 4, :]).norm(dim=-1)
    scale = (leg / _BUILTIN_LEG_M)[..., None, None]
    parents = SMPL_PARENTS + tuple(p for _, p, _ in EXTRA_KEYPOINTS)
    offsets = torch.tensor([o for _, _, o in EXTRA_KEYPOINTS], dtype=poses.dtype) * scale
    extra_rest = rest[..., [p for _, p, _ in EXTRA_KEYPOINTS], :] + offsets
    rest45 = torch.cat([rest.expand(*extra_rest.shape[:-2], N_SMPL_JOINTS, 3), extra_rest], dim=-2)
    poses45 = torch.cat([poses, poses.new_zeros(*poses.shape[:-2], len(EXTRA_KEYPOINTS), 3)], dim=-2)
    return smpl_forward_kinematics(poses45, rest45, transl, parents=parents)


__all__ = [
    "ARM_MOVES", "DanceSpec", "EXTRA_KEYPOINTS", "LEG_MOVES", "MotionBatch", "N_SMPL45", "STUDIO_ACTIONS",
    "StudioSpec", "TEMPO_RANGE", "genre_tempo", "plant_feet", "smpl45_joints", "synthesize_dances",
    "synthesize_studio",
]
