"""Motion metrics on hand-built cases whose answers are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flowmimic.body.skeleton import default_rest_joints
from flowmimic.evaluation.motion_metrics import (GEOMETRIC_RELATIONS, HL, bootstrap_interval, bootstrap_mean, diversity, fid,
                                      fid_and_diversity, foot_skating_counts, foot_skating_ratio, frechet_distance,
                                      geometric_features, kinetic_features, resample)

FPS = 20.0


def _rest(T: int) -> torch.Tensor:
    """A standing T-pose (T, 22, 3), toes near the floor: the built-in rest skeleton lifted onto y = 0."""
    j = default_rest_joints(torch.float64)[:22].clone()
    j[:, 1] -= j[:, 1].min()
    return j.expand(T, 22, 3).clone()


# ----------------------------------------------------------------------------- FID / diversity


def test_a_set_against_itself_has_fid_zero():
    x = torch.randn(200, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(fid(x, x)) < 1e-8
    assert fid(x, x + 0.5) > 0.1


def test_frechet_distance_of_known_gaussians_matches_the_closed_form():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(5, 5, generator=g, dtype=torch.float64)
    cov1 = a @ a.T + 0.1 * torch.eye(5, dtype=torch.float64)          # full, non-diagonal
    mu1, mu2 = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    # cov2 = c cov1: tr((cov1 cov2)^1/2) = sqrt(c) tr(cov1), so FD = |dmu|^2 + tr(cov1) (1 + c - 2 sqrt(c)).
    c = 2.5
    expected = float((mu1 - mu2) @ (mu1 - mu2) + cov1.trace() * (1 + c - 2 * math.sqrt(c)))
    assert frechet_distance(mu1, cov1, mu2, c * cov1) == pytest.approx(expected, rel=1e-9)
    # Diagonal covariances: FD = |dmu|^2 + sum (sqrt(s1) - sqrt(s2))^2.
    s1, s2 = torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64), torch.tensor([9.0, 1.0, 0.25], dtype=torch.float64)
    m = torch.tensor([1.0, 0.0, -2.0], dtype=torch.float64)
    expected = 5.0 + float(((s1.sqrt() - s2.sqrt()) ** 2).sum())
    assert frechet_distance(torch.zeros(3), torch.diag(s1), m, torch.diag(s2)) == pytest.approx(expected, rel=1e-9)


def test_fid_of_sampled_gaussians_after_zscoring_by_the_real_set():
    # Real ~ N(0, I): z-scoring by it is ~ the identity, so FID ~ D m^2 + D (1 - s)^2.
    g = torch.Generator().manual_seed(2)
    D, m, s = 4, 0.5, 2.0
    real = torch.randn(40000, D, generator=g, dtype=torch.float64)
    gen = m + s * torch.randn(40000, D, generator=g, dtype=torch.float64)
    assert fid(real, gen) == pytest.approx(D * m**2 + D * (1 - s) ** 2, rel=0.03)


def test_zscoring_uses_the_real_sets_statistics_only():
    # Scaling the generated set alone must change FID; scaling both sets together must not.
    g = torch.Generator().manual_seed(3)
    real, gen = torch.randn(500, 3, generator=g), 1.5 * torch.randn(500, 3, generator=g)
    assert fid(10 * real, 10 * gen) == pytest.approx(fid(real, gen), rel=1e-6)
    assert fid(real, 3 * gen) > 2 * fid(real, gen)


def test_diversity_is_the_mean_pairwise_distance():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert diversity(x) == pytest.approx((5 + 10 + 5) / 3)
    out = fid_and_diversity(x, x)                       # a rank-1 covariance: round-off ~ sqrt(eps)
    assert out["fid"] == pytest.approx(0.0, abs=1e-6) and out["div"] == pytest.approx(out["div_real"])


# ----------------------------------------------------------------------------- kinetic features


def test_static_pose_has_zero_kinetic_features():
    k = kinetic_features(_rest(40), FPS)
    assert k.shape == (66,) and k.abs().max() < 1e-12


def test_constant_velocity_gives_its_kinetic_energy_and_no_acceleration():
    v = torch.tensor([0.3, -0.4, 1.2], dtype=torch.float64)                # m/s
    t = torch.arange(41, dtype=torch.float64) / FPS
    joints = _rest(41) + t[:, None, None] * v
    k = kinetic_features(joints, FPS).view(22, 3)
    assert torch.allclose(k[:, 0], torch.full((22,), 0.3**2 + 1.2**2, dtype=torch.float64), atol=1e-9)   # x, z
    assert torch.allclose(k[:, 1], torch.full((22,), 0.4**2, dtype=torch.float64), atol=1e-9)           # y
    assert k[:, 2].abs().max() < 1e-9


def _naive_kinetic(p: np.ndarray, dt: float) -> np.ndarray:
    """Per-frame loops of the AIST++ API's formulas (window 2), written from its definition."""
    T, J, _ = p.shape
    out = []
    for j in range(J):
        ke_h = ke_v = acc = 0.0
        for i in range(1, T):
            ks = [i + o for o in range(-2, 3) if 1 <= i + o <= T - 1]
            vel = np.mean([(p[k, j] - p[k - 1, j]) / dt for k in ks], axis=0)
            ka = [i + o for o in range(-2, 3) if 1 <= i + o <= T - 2]
            a = np.mean([(p[k + 1, j] - 2 * p[k, j] + p[k - 1, j]) / dt**2 for k in ka], axis=0)
            ke_h += vel[0] ** 2 + vel[2] ** 2
            ke_v += vel[1] ** 2
            acc += np.linalg.norm(a)
        out += [ke_h / (T - 1), ke_v / (T - 1), acc / (T - 1)]
    return np.array(out)


def test_kinetic_features_equal_per_frame_loops_of_the_definition():
    p = torch.randn(13, 22, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64).cumsum(0) * 0.01
    fast = kinetic_features(p, 60.0)                                         # already at 60 fps: no resampling
    assert np.allclose(fast.numpy(), _naive_kinetic(p.numpy(), 1 / 60), rtol=1e-10, atol=1e-12)
    batched = kinetic_features(torch.stack([p, 2 * p]), 60.0)                # batch dims are independent
    assert torch.allclose(batched[0], fast) and torch.allclose(batched[1], 4 * fast[..., :] * torch.tensor(
        [1.0, 1.0, 0.5] * 22, dtype=torch.float64))


def test_resample_keeps_input_frames_and_interpolates_between():
    x = torch.arange(5, dtype=torch.float64)[:, None, None].expand(5, 22, 3)
    y = resample(x, 20.0, 60.0)
    assert y.shape[0] == 13 and torch.equal(y[::3], x) and y[1, 0, 0] == pytest.approx(1 / 3)


# ----------------------------------------------------------------------------- geometric features


def _feature(name_kind: str, joints: tuple[str, ...]) -> int:
    return next(i for i, (k, n, _) in enumerate(GEOMETRIC_RELATIONS) if k == name_kind and n == joints)


def test_geometric_relations_flip_on_hand_built_poses():
    T = 10
    stand = _rest(T)
    g = geometric_features(stand, FPS)
    assert g.shape == (32,) and ((g == 0) | (g == 1)).all()                  # a static pose: all or nothing

    r_elbow = _feature("angle", ("relbow", "rshoulder", "relbow", "rwrist"))
    lying = _feature("angle", ("neck", "root", "zero", "y_unit"))
    r_ankle_up = _feature("nplane", ("zero", "y_unit", "y_min", "rankle"))
    r_wrist_fast = _feature("fast", ("rwrist",))
    assert g[r_elbow] == 0 and g[lying] == 0 and g[r_ankle_up] == 0 and g[r_wrist_fast] == 0

    bent = stand.clone()                                                     # right forearm straight up: 90 deg
    bent[:, 21] = bent[:, 19] + torch.tensor([0.0, 0.26, 0.0], dtype=torch.float64)
    assert geometric_features(bent, FPS)[r_elbow] == 1

    flat = stand.clone()                                                     # the whole body lying on its back
    flat = flat @ torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]], dtype=torch.float64).T
    assert geometric_features(flat, FPS)[lying] == 1

    kick = stand.clone()                                                     # right ankle 1.5 HL above the floor
    kick[:, 8, 1] = kick[:, :, 1].min() + 1.5 * HL
    assert geometric_features(kick, FPS)[r_ankle_up] == 1

    wave = stand.clone()                                                     # right wrist moving at 2 m/s
    wave[:, 21, 0] += 2.0 * torch.arange(T, dtype=torch.float64) / FPS
    # The API's velocity is displacement / (1/120 s) on 60 fps frames: 4 m/s here, > 2.5 HL ~ 0.64.
    assert geometric_features(wave, FPS)[r_wrist_fast] == 1
    slow = stand.clone()
    slow[:, 21, 0] += 0.2 * torch.arange(T, dtype=torch.float64) / FPS       # 0.4 m/s in the API's units
    assert geometric_features(slow, FPS)[r_wrist_fast] == 0


# ----------------------------------------------------------------------------- foot skating


def test_foot_skating_counts_sliding_contacts_only():
    T = 21
    stand = _rest(T)
    skate, contact = foot_skating_counts(stand, FPS)
    assert skate == 0 and contact == 2 * (T - 1)                             # both toes on the floor every step

    slide = stand + (torch.arange(T, dtype=torch.float64) / FPS)[:, None, None] * torch.tensor([1.0, 0, 0],
                                                                                                 dtype=torch.float64)
    assert foot_skating_ratio(slide, FPS) == 1.0                             # 1 m/s > 0.5 m/s, on the floor

    creep = stand + (torch.arange(T, dtype=torch.float64) / FPS)[:, None, None] * torch.tensor([0.2, 0, 0],
                                                                                                 dtype=torch.float64)
    assert foot_skating_ratio(creep, FPS) == 0.0                             # 0.2 m/s is under the threshold

    flying = slide + torch.tensor([0.0, 0.3, 0.0], dtype=torch.float64)      # sliding in the air is no skating
    assert foot_skating_counts(flying, FPS) == (0, 0) and foot_skating_ratio(flying, FPS) == 0.0


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_interval_covers_the_estimate_and_narrows_with_more_items():
    rng = np.random.default_rng(0)
    small, large = rng.random(30) < 0.8, rng.random(3000) < 0.8
    lo_s, hi_s = bootstrap_mean(small, n_resamples=500)
    lo_l, hi_l = bootstrap_mean(large, n_resamples=500)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 4
    assert bootstrap_mean(small, n_resamples=200, seed=1) == bootstrap_mean(small, n_resamples=200, seed=1)
    const = bootstrap_interval(lambda idx: 7.0, 5, n_resamples=50)
    assert const == (7.0, 7.0)
