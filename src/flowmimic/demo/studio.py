"""Procedural MVHumanNet-like studio actions for the demo dataset.

Calm actions (`STUDIO_ACTIONS`): standing, waving, raising the arms, turning around, a few steps,
squats, arm circles. A sequence is a short idle start followed by randomly chosen actions of a few
seconds each; each action starts and ends in the neutral stance, and breathing, a slow weight shift
and looking around run underneath. Every performer has a body scale and a personal pace.

The actions fill the joint-angle channels of `demo.motion`, which turns them into SMPL
poses with the feet planted on the floor (`synthesize_studio` returns its `MotionBatch`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowmimic.demo.motion import _ARM_REST_DOWN, DTYPE, MotionBatch, StudioSpec, _finish, _lognormal, \
    _neutral_channels, _smoothstep, _stack_plans, _uniform

STUDIO_ACTIONS: tuple[str, ...] = ("idle", "wave", "raise", "turn", "walk", "squat", "circles")
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


__all__ = ["STUDIO_ACTIONS", "synthesize_studio"]
