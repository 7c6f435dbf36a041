"""Foot locking on a synthetic skating walk whose answers are known by construction."""

from __future__ import annotations

import math

import pytest
import torch

from flowmimic.body.skeleton import (L_HIP, L_KNEE, LEFT_FOOT, N_JOINTS, R_HIP, R_KNEE, RIGHT_FOOT,
                                     TARGET_BONE_LENGTHS, default_rest_joints)
from flowmimic.evaluation.motion_metrics import foot_skating_counts
from flowmimic.generation.footlock import REACH_MAX, lock_feet

FPS = 20.0
SPEED = 0.03            # m per frame the whole body (feet included) slides forward: 0.6 m/s, above GMD's 0.5
L_ANKLE, L_TOE = LEFT_FOOT
R_ANKLE, R_TOE = RIGHT_FOOT
LEGS = ((L_HIP, L_KNEE, L_ANKLE, L_TOE), (R_HIP, R_KNEE, R_ANKLE, R_TOE))
LEG_JOINTS = {L_KNEE, L_ANKLE, L_TOE, R_KNEE, R_ANKLE, R_TOE}
LEFT_RUN, RIGHT_RUN = (5, 16), (22, 33)       # inclusive frames labelled in contact


def _leg(hip: torch.Tensor, thigh_deg: float, shin_deg: float) -> tuple[torch.Tensor, ...]:
    """Knee, ankle, toe below `hip` in the sagittal (y, z) plane: thigh tilted forward, shin back."""
    a, b = math.radians(thigh_deg), math.radians(shin_deg)
    knee = hip + TARGET_BONE_LENGTHS[4] * torch.tensor([0.0, -math.cos(a), math.sin(a)], dtype=torch.float64)
    ankle = knee + TARGET_BONE_LENGTHS[7] * torch.tensor([0.0, -math.cos(b), -math.sin(b)], dtype=torch.float64)
    foot = torch.tensor([0.0, -0.45, 1.0], dtype=torch.float64)
    toe = ankle + TARGET_BONE_LENGTHS[10] * foot / foot.norm()
    return knee, ankle, toe


def _walk(frames: int = 40, bend_deg: float = 25.0, speed: float = SPEED, wiggle: float = 0.0) -> torch.Tensor:
    """(frames, 22, 3) float64: a crouched body gliding forward (+z) at `speed` per frame with a small
    vertical bob; `wiggle` (degrees) swings the legs so that knees move relative to the hips."""
    rest = default_rest_joints(torch.float64)[:N_JOINTS]
    out = rest.expand(frames, N_JOINTS, 3).clone()
    for t in range(frames):
        for side, (hip, knee, ankle, toe) in enumerate(LEGS):
            swing = wiggle * math.sin(0.4 * t + math.pi * side)
            out[t, knee], out[t, ankle], out[t, toe] = _leg(rest[hip], bend_deg + swing, bend_deg - swing)
    out[..., 1] += 0.02 - out[0, L_TOE, 1]                                          # toes 2 cm above the floor
    t = torch.arange(frames, dtype=torch.float64)
    out[..., 1] += 0.005 * torch.sin(0.5 * t)[:, None]
    out[..., 2] += speed * t[:, None]
    return out


def _contacts(frames: int = 40) -> torch.Tensor:
    """(frames, 4): left foot down over LEFT_RUN (heel first, then toe: their union is the run),
    right foot over RIGHT_RUN (both labels)."""
    c = torch.zeros(frames, 4, dtype=torch.float64)
    c[LEFT_RUN[0]:LEFT_RUN[0] + 8, 0] = 1.0
    c[LEFT_RUN[0] + 4:LEFT_RUN[1] + 1, 1] = 1.0
    c[RIGHT_RUN[0]:RIGHT_RUN[1] + 1, 2:] = 1.0
    return c


def _lengths(j: torch.Tensor) -> torch.Tensor:
    """(F, 2, 3): hip-knee, knee-ankle, ankle-toe lengths of both legs."""
    return torch.stack([torch.stack([(j[:, k] - j[:, h]).norm(dim=-1), (j[:, a] - j[:, k]).norm(dim=-1),
                                     (j[:, t] - j[:, a]).norm(dim=-1)], dim=-1) for h, k, a, t in LEGS], dim=1)


def test_a_labelled_toe_stands_still_at_the_mean_of_its_sliding_path():
    j = _walk()
    out = lock_feet(j, _contacts(), blend_frames=3)
    for (s, e), toe in ((LEFT_RUN, L_TOE), (RIGHT_RUN, R_TOE)):
        xz = out[s:e + 1, toe][:, [0, 2]]
        assert (xz[1:] - xz[:-1]).norm(dim=-1).max() < 1e-4
        # Independent lock position: the input toe's mean horizontal position over the run.
        expected = j[s:e + 1, toe][:, [0, 2]].mean(dim=0)
        assert torch.allclose(xz, expected.expand_as(xz), atol=1e-6)
        assert torch.equal(out[s:e + 1, toe, 1], j[s:e + 1, toe, 1])                   # height untouched
    # Beyond a run and its 3 blend frames a leg is the input's (left: 2..19 change, right: 19..36).
    left, right = [L_KNEE, L_ANKLE, L_TOE], [R_KNEE, R_ANKLE, R_TOE]
    assert torch.equal(out[:2, left], j[:2, left]) and torch.equal(out[20:, left], j[20:, left])
    assert torch.equal(out[:19, right], j[:19, right]) and torch.equal(out[37:, right], j[37:, right])
    assert not torch.equal(out[2, left], j[2, left]) and not torch.equal(out[36, right], j[36, right])


def test_no_contacts_returns_the_input_exactly():
    j = _walk(wiggle=8.0)
    out = lock_feet(j, torch.zeros(40, 4, dtype=torch.float64))
    assert torch.equal(out, j)
    assert out is not j


def test_short_runs_are_not_locked():
    j = _walk()
    c = torch.zeros(40, 4, dtype=torch.float64)
    c[10:12, 1] = 1.0                                                              # 2 frames
    assert torch.equal(lock_feet(j, c, min_run=3), j)
    assert not torch.equal(lock_feet(j, c, min_run=2), j)


@pytest.mark.parametrize("wiggle", [0.0, 10.0])
def test_bone_lengths_kept_and_everything_but_the_legs_bit_identical(wiggle):
    j = _walk(wiggle=wiggle)
    before = j.clone()
    out = lock_feet(j, _contacts())
    assert torch.equal(j, before)                                                   # input untouched
    assert (_lengths(out) - _lengths(j)).abs().max() < 1e-5
    others = [k for k in range(N_JOINTS) if k not in LEG_JOINTS]
    assert torch.equal(out[:, others], j[:, others])
    assert torch.equal(out[:, [L_HIP, R_HIP]], j[:, [L_HIP, R_HIP]])


def test_one_foot_does_not_move_the_other_leg():
    j = _walk(wiggle=10.0)
    c = _contacts()
    c[:, 2:] = 0.0                                                                  # only the left foot
    out = lock_feet(j, c)
    assert torch.equal(out[:, [R_KNEE, R_ANKLE, R_TOE]], j[:, [R_KNEE, R_ANKLE, R_TOE]])
    assert not torch.equal(out[:, [L_KNEE, L_ANKLE, L_TOE]], j[:, [L_KNEE, L_ANKLE, L_TOE]])


def test_the_knee_stays_in_the_plane_of_the_new_leg_and_the_original_knee():
    j = _walk(wiggle=10.0)
    out = lock_feet(j, _contacts())
    for hip, knee, ankle, toe in LEGS:
        h = j[:, hip]
        line, pole, new = out[:, ankle] - h, j[:, knee] - h, out[:, knee] - h
        # Coplanar: the triple product vanishes (relative to the vectors' sizes, ~0.4 m each).
        assert torch.linalg.det(torch.stack((line, pole, new), dim=1)).abs().max() < 1e-9
        # Same side of the hip-ankle line as the original knee (bent the same way, not flipped).
        u = line / line.norm(dim=-1, keepdim=True)
        perp = lambda v: v - (v * u).sum(-1, keepdim=True) * u                      # noqa: E731
        assert ((perp(new) * perp(pole)).sum(-1) > 0).all()
        # The shin ends at the moved ankle, and the foot moved rigidly: ankle -> toe unchanged.
        foot_in, foot_out = j[:, toe] - j[:, ankle], out[:, toe] - out[:, ankle]
        assert torch.allclose(foot_in, foot_out, atol=1e-12)


def test_the_correction_blends_in_and_out_without_a_jump():
    j = _walk()
    c = _contacts()
    blend = 3
    out = lock_feet(j, c, blend_frames=blend)
    # Bound: inside a run the correction changes by exactly the input toe's step (it cancels it);
    # in a blend it is edge_correction * smoothstep(s), s stepping by 1/(blend+1), and smoothstep's
    # slope is at most 1.5, so it changes by at most 1.5 * |edge correction| / (blend + 1) per frame.
    # The ankle and toe move by the correction, so their steps grow by at most that much.
    for (s, e), (_, _, ankle, toe) in zip((LEFT_RUN, RIGHT_RUN), LEGS):
        xz = j[s:e + 1, toe][:, [0, 2]]
        edge = max((xz.mean(0) - xz[0]).norm(), (xz.mean(0) - xz[-1]).norm())
        in_step = (j[1:, toe] - j[:-1, toe]).norm(dim=-1).max()
        bound = max(in_step, 1.5 * edge / (blend + 1)) + 1e-9
        corr = (out[:, toe] - j[:, toe])[:, [0, 2]]
        assert (corr[1:] - corr[:-1]).norm(dim=-1).max() <= bound
        for joint in (ankle, toe):
            step_in = (j[1:, joint] - j[:-1, joint]).norm(dim=-1).max()
            step_out = (out[1:, joint] - out[:-1, joint]).norm(dim=-1).max()
            assert step_out <= step_in + bound
        # The bound has teeth: without blending the foot jumps by the whole edge correction.
        hard = lock_feet(j, c, blend_frames=0)
        corr0 = (hard[:, toe] - j[:, toe])[:, [0, 2]]
        assert (corr0[1:] - corr0[:-1]).norm(dim=-1).max() > bound
        # Fading reaches exactly 0 after `blend` frames.
        assert torch.equal(out[s - blend - 1, toe], j[s - blend - 1, toe])
        assert torch.equal(out[e + blend + 1, toe], j[e + blend + 1, toe])
        assert not torch.equal(out[s - blend, toe], j[s - blend, toe])


def test_nearby_runs_are_bridged_smoothly():
    j = _walk()
    c = torch.zeros(40, 4, dtype=torch.float64)
    c[5:15, 1] = 1.0
    c[18:28, 1] = 1.0                                                               # gap of 3 < 2 * blend
    out = lock_feet(j, c, blend_frames=3)
    corr = (out[:, L_TOE] - j[:, L_TOE])[:, [0, 2]]
    # Gap: from run 1's end correction to run 2's start correction with smoothstep over 4 steps.
    jump = (corr[18] - corr[14]).norm()
    assert (corr[1:] - corr[:-1]).norm(dim=-1)[14:18].max() <= 1.5 * jump / 4 + 1e-9


@pytest.mark.parametrize("bend, speed", [(2.0, SPEED), (25.0, 0.1)])
def test_an_out_of_reach_ankle_is_pulled_back_within_the_leg(bend, speed):
    j = _walk(bend_deg=bend, speed=speed)
    out = lock_feet(j, _contacts())
    for hip, knee, ankle, toe in LEGS:
        full = (j[:, knee] - j[:, hip]).norm(dim=-1) + (j[:, ankle] - j[:, knee]).norm(dim=-1)
        reach = (out[:, ankle] - out[:, hip]).norm(dim=-1)
        assert (reach <= full + 1e-9).all()
        # Frames the lock changed are kept just inside full reach (the others are the input's own).
        changed = (out[:, ankle] != j[:, ankle]).any(dim=-1)
        assert changed.any() and (reach[changed] <= REACH_MAX * full[changed] + 1e-9).all()
        assert torch.allclose(out[:, toe] - out[:, ankle], j[:, toe] - j[:, ankle], atol=1e-12)
    assert (_lengths(out) - _lengths(j)).abs().max() < 1e-5
    # The clamp really acted: some locked frame's ankle ended at full reach, off its lock.
    l_reach = (out[:, L_ANKLE] - out[:, L_HIP]).norm(dim=-1)
    l_full = _lengths(j)[:, 0, :2].sum(-1)
    assert torch.isclose(l_reach, REACH_MAX * l_full, atol=1e-9).any()


def test_skating_measure_drops_after_locking():
    j = _walk()
    before, contact_before = foot_skating_counts(j, FPS)
    after, contact_after = foot_skating_counts(lock_feet(j, _contacts()), FPS)
    assert contact_before == contact_after == 2 * 39                                # toes stay low throughout
    assert before == 2 * 39                                                        # every step slides at 0.6 m/s
    # The 11 steps inside each 12-frame run no longer slide.
    assert after <= before - 2 * 11


def test_shapes_dtypes_and_the_features_frame_count():
    j = _walk()
    c = _contacts()
    out32 = lock_feet(j.float(), c.float())
    assert out32.dtype == torch.float32 and out32.shape == j.shape
    assert (_lengths(out32.double()) - _lengths(j.float().double())).abs().max() < 1e-5
    # Features have one frame fewer: the last frame repeats the previous label.
    short = c[:-1].clone()
    short[-1] = 1.0
    padded = torch.cat((short, short[-1:]), dim=0)
    assert torch.equal(lock_feet(j, short), lock_feet(j, padded))
    with pytest.raises(ValueError, match=r"joints must be \(F, 22, 3\)"):
        lock_feet(j[:, :21], c)
    with pytest.raises(ValueError, match=r"joints must be \(F, 22, 3\)"):
        lock_feet(j[..., :2], c)
    with pytest.raises(ValueError, match=r"joints must be \(F, 22, 3\)"):
        lock_feet(j[None], c)
    with pytest.raises(ValueError, match="float"):
        lock_feet(j.long(), c)
    with pytest.raises(ValueError, match=r"contacts must be \(F, 4\) or \(F - 1, 4\)"):
        lock_feet(j, c[:, :3])
    with pytest.raises(ValueError, match=r"contacts must be \(F, 4\) or \(F - 1, 4\)"):
        lock_feet(j, c[:-2])
    with pytest.raises(ValueError, match="blend_frames"):
        lock_feet(j, c, blend_frames=-1)
