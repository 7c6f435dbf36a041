"""Procedural dances for the demo dataset, in the 10 AIST++ genres, on a beat grid.

Each genre has a row in `_GENRE_TABLE` (stepping rate, knee lift, travel, bounce, crouch, stance
width, lean, arm amplitude and rate, waveform sharpness, twist, chest pulse, head nods, kicks,
turns) and weights over a small vocabulary of arm and leg moves (`ARM_MOVES`, `LEG_MOVES`). A
sequence is a chain of 4-beat bars, each with its own moves and random details, cross-faded over
the last beat of a bar; every dancer has personal multipliers, and basic (sBM) sequences alternate
two moves while advanced (sFM) ones vary more and turn more. `genre_tempo` gives the music's tempo.

The moves fill the joint-angle channels of `demo.motion`, which turns them into SMPL poses
with the feet planted on the floor (`synthesize_dances` returns its `MotionBatch`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowmimic.body.skeleton import N_SMPL_JOINTS
from flowmimic.taxonomy import GENRES
from flowmimic.demo.motion import DTYPE, DanceSpec, MotionBatch, _finish, _lognormal, _neutral_channels, \
    _smoothstep, _stack_plans, _uniform

BAR_BEATS = 4                   # beats per bar: moves change at bar lines
CROSSFADE_BEATS = 1.0           # moves blend into the next bar's over this many beats

ARM_MOVES: tuple[str, ...] = ("swing", "pump", "open", "punch", "whip", "pose")
LEG_MOVES: tuple[str, ...] = ("bounce", "step", "travel", "kick", "sway")

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


def genre_tempo(genre: str, music: int) -> float:
    """Tempo (BPM) of music piece `music` (0..5) of `genre` ('gBR', ...)."""
    lo, hi = TEMPO_RANGE[genre]
    return lo + (hi - lo) * music / 5.0


# ----------------------------------------------------------------------------- beat-grid waveforms


def _wave(x: Tensor, sharp: Tensor) -> Tensor:
    """A periodic wave in [-1, 1]: a sine for small `sharp`, towards a square wave (hits, holds) for large."""
    return torch.tanh(sharp * torch.sin(x)) / torch.tanh(sharp)


def _hit(beats: Tensor, attack: float = 0.1) -> Tensor:
    """A fast-attack, decaying accent after every beat, in [0, 1], peaking `attack` beats after it."""
    f = torch.remainder(beats, 1.0) / attack
    return f * torch.exp(1.0 - f)


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


__all__ = ["ARM_MOVES", "LEG_MOVES", "TEMPO_RANGE", "genre_tempo", "synthesize_dances"]
