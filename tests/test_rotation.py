"""Rotation conversions: round trips, near-zero and 180-degree angles, consistency, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from flowmimic.body.rotation import (
    axis_angle_to_matrix,
    axis_angle_to_quat,
    matrix_to_6d,
    matrix_to_axis_angle,
    matrix_to_quat,
    quat_about_y,
    quat_between,
    quat_identity,
    quat_inv,
    quat_mul,
    quat_rotate,
    quat_to_6d,
    quat_to_axis_angle,
    quat_to_matrix,
    sixd_to_matrix,
    sixd_to_quat,
)

D = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _skew(v: torch.Tensor) -> torch.Tensor:
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack((o, -z, y, z, o, -x, -y, x, o), -1).reshape(*v.shape[:-1], 3, 3)


def _random_aa(n: int, seed: int = 0, max_angle: float = 3.0) -> torch.Tensor:
    g = _gen(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=D), dim=-1)
    return axis * torch.rand(n, 1, generator=g, dtype=D) * max_angle


def _random_quat(n: int, seed: int = 0) -> torch.Tensor:
    q = torch.nn.functional.normalize(torch.randn(n, 4, generator=_gen(seed), dtype=D), dim=-1)
    return torch.where(q[:, :1] < 0, -q, q)


AXES_180 = {
    "x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0),
    "random": tuple(torch.nn.functional.normalize(torch.tensor([0.3, -0.8, 0.52], dtype=D), dim=0).tolist()),
}


# ----------------------------------------------------------------------------- against an oracle


def test_axis_angle_to_matrix_matches_matrix_exponential() -> None:
    aa = torch.cat([_random_aa(64), torch.zeros(1, 3, dtype=D), torch.tensor([[math.pi, 0, 0]], dtype=D)])
    expected = torch.linalg.matrix_exp(_skew(aa))      # R = exp([aa]x), independent of Rodrigues
    torch.testing.assert_close(axis_angle_to_matrix(aa), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(quat_to_matrix(axis_angle_to_quat(aa)), expected, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- round trips


def test_round_trips_random() -> None:
    aa = _random_aa(200, seed=1)
    torch.testing.assert_close(quat_to_axis_angle(axis_angle_to_quat(aa)), aa, rtol=0, atol=1e-12)
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(aa)), aa, rtol=0, atol=1e-10)
    q = _random_quat(200, seed=2)
    torch.testing.assert_close(matrix_to_quat(quat_to_matrix(q)), q, rtol=0, atol=1e-12)
    torch.testing.assert_close(sixd_to_quat(quat_to_6d(q)), q, rtol=0, atol=1e-12)
    m = quat_to_matrix(q)
    torch.testing.assert_close(sixd_to_matrix(matrix_to_6d(m)), m, rtol=0, atol=1e-12)


def test_round_trips_keep_leading_dims_and_dtype() -> None:
    aa = _random_aa(24, seed=3).reshape(2, 3, 4, 3).float()
    q = axis_angle_to_quat(aa)
    assert q.shape == (2, 3, 4, 4) and q.dtype == torch.float32
    assert axis_angle_to_matrix(aa).shape == (2, 3, 4, 3, 3)
    assert quat_to_6d(q).shape == (2, 3, 4, 6)
    torch.testing.assert_close(quat_to_axis_angle(q), aa, rtol=0, atol=1e-5)


def test_near_zero_angle() -> None:
    axis = torch.nn.functional.normalize(torch.tensor([0.2, -0.5, 0.9], dtype=D), dim=0)
    aa = axis * 1e-9
    q = axis_angle_to_quat(aa)
    torch.testing.assert_close(q, torch.cat([torch.ones(1, dtype=D), aa / 2]), rtol=1e-12, atol=1e-20)
    torch.testing.assert_close(quat_to_axis_angle(q), aa, rtol=1e-9, atol=1e-20)
    m = axis_angle_to_matrix(aa)
    torch.testing.assert_close(m, torch.eye(3, dtype=D) + _skew(aa), rtol=0, atol=1e-17)
    torch.testing.assert_close(matrix_to_axis_angle(m), aa, rtol=1e-6, atol=1e-20)
    zero = torch.zeros(3, dtype=D)
    assert torch.equal(axis_angle_to_quat(zero), quat_identity(dtype=D))
    assert torch.equal(axis_angle_to_matrix(zero), torch.eye(3, dtype=D))
    assert torch.equal(quat_to_axis_angle(quat_identity(dtype=D)), zero)


@pytest.mark.parametrize("name", list(AXES_180))
def test_exactly_180_degrees(name: str) -> None:
    axis = torch.tensor(AXES_180[name], dtype=D)
    aa = axis * math.pi
    m = axis_angle_to_matrix(aa)
    expected = 2 * torch.outer(axis, axis) - torch.eye(3, dtype=D)        # rotation by pi
    torch.testing.assert_close(m, expected, rtol=0, atol=1e-12)
    q = matrix_to_quat(m)
    assert abs(q[0].item()) < 1e-12 and q[0] >= 0
    sign = torch.sign((q[1:] * axis).sum())
    torch.testing.assert_close(q[1:] * sign, axis, rtol=0, atol=1e-12)
    back = matrix_to_axis_angle(m)
    assert abs(back.norm().item() - math.pi) < 1e-12
    torch.testing.assert_close(back * sign, aa, rtol=0, atol=1e-12)
    torch.testing.assert_close(axis_angle_to_matrix(back), m, rtol=0, atol=1e-12)
    torch.testing.assert_close(quat_to_axis_angle(axis_angle_to_quat(aa)), aa, rtol=0, atol=1e-12)
    torch.testing.assert_close(sixd_to_matrix(matrix_to_6d(m)), m, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- quaternion algebra


def test_quat_between_maps_u_onto_v() -> None:
    g = _gen(4)
    u = torch.randn(100, 3, generator=g, dtype=D) * 3
    v = torch.randn(100, 3, generator=g, dtype=D) * 0.2
    q = quat_between(u, v)
    torch.testing.assert_close(q.norm(dim=-1), torch.ones(100, dtype=D))
    rotated = quat_rotate(q, torch.nn.functional.normalize(u, dim=-1))
    torch.testing.assert_close(rotated, torch.nn.functional.normalize(v, dim=-1), rtol=0, atol=1e-12)
    # broadcasting one target, and the parallel case gives the identity
    target = torch.tensor([0.0, 0.0, 1.0], dtype=D)
    torch.testing.assert_close(quat_rotate(quat_between(u, target), torch.nn.functional.normalize(u, dim=-1)),
                               target.expand(100, 3), rtol=0, atol=1e-12)
    torch.testing.assert_close(quat_between(u, 2 * u), quat_identity((100,), dtype=D), rtol=0, atol=1e-12)


def test_quat_mul_and_rotate_consistent_with_matrices() -> None:
    a, b = _random_quat(50, seed=5), _random_quat(50, seed=6)
    v = torch.randn(50, 3, generator=_gen(7), dtype=D)
    ma, mb = quat_to_matrix(a), quat_to_matrix(b)
    torch.testing.assert_close(quat_to_matrix(quat_mul(a, b)), ma @ mb, rtol=0, atol=1e-12)
    torch.testing.assert_close(quat_rotate(a, v), (ma @ v[..., None])[..., 0], rtol=0, atol=1e-12)
    torch.testing.assert_close(quat_rotate(quat_mul(a, b), v), quat_rotate(a, quat_rotate(b, v)),
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(quat_rotate(quat_inv(a), quat_rotate(a, v)), v, rtol=0, atol=1e-12)
    torch.testing.assert_close(quat_mul(a, quat_inv(a)), quat_identity((50,), dtype=D), rtol=0, atol=1e-12)
    assert not torch.allclose(quat_mul(a, b), quat_mul(b, a))          # order matters


def test_quat_about_y_is_a_half_angle_rotation_about_y() -> None:
    half = torch.linspace(-3, 3, 13, dtype=D)
    aa = torch.stack([torch.zeros_like(half), 2 * half, torch.zeros_like(half)], -1)
    torch.testing.assert_close(quat_to_matrix(quat_about_y(half)), axis_angle_to_matrix(aa),
                               rtol=0, atol=1e-12)


def test_6d_is_first_two_columns() -> None:
    m = quat_to_matrix(_random_quat(10, seed=8))
    d6 = matrix_to_6d(m)
    torch.testing.assert_close(d6[:, :3], m[:, :, 0], rtol=0, atol=0)
    torch.testing.assert_close(d6[:, 3:], m[:, :, 1], rtol=0, atol=0)
    noisy = sixd_to_matrix(d6 * 3 + 0.1 * torch.randn(10, 6, generator=_gen(9), dtype=D))
    torch.testing.assert_close(noisy @ noisy.transpose(-1, -2), torch.eye(3, dtype=D).expand(10, 3, 3))
    torch.testing.assert_close(torch.linalg.det(noisy), torch.ones(10, dtype=D))


# ----------------------------------------------------------------------------- gradients


def test_gradients_finite_at_zero_angle() -> None:
    zero = torch.zeros(3, dtype=D)
    jac = torch.autograd.functional.jacobian(axis_angle_to_matrix, zero)     # (3, 3, 3)
    for k in range(3):                                                        # dR/da_k = [e_k]x at 0
        torch.testing.assert_close(jac[..., k], _skew(torch.eye(3, dtype=D)[k]), rtol=0, atol=1e-12)
    jq = torch.autograd.functional.jacobian(axis_angle_to_quat, zero)        # (4, 3)
    torch.testing.assert_close(jq, torch.cat([torch.zeros(1, 3, dtype=D), 0.5 * torch.eye(3, dtype=D)]))
    for fn, x in ((quat_to_axis_angle, quat_identity(dtype=D)), (matrix_to_quat, torch.eye(3, dtype=D)),
                  (matrix_to_axis_angle, torch.eye(3, dtype=D)),
                  (sixd_to_matrix, matrix_to_6d(torch.eye(3, dtype=D)))):
        x = x.clone().requires_grad_(True)
        (fn(x) * torch.arange(1, fn(x).numel() + 1, dtype=D).reshape(fn(x).shape)).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all(), fn.__name__


# ----------------------------------------------------------------------------- Euler angles (BVH)

ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


@pytest.mark.parametrize("order", ORDERS)
def test_euler_round_trip_every_order_including_gimbal_lock(order: str) -> None:
    from flowmimic.body.rotation import euler_to_matrix, matrix_to_euler

    g = torch.Generator().manual_seed(1)
    limits = torch.tensor([math.pi, math.pi / 2, math.pi], dtype=D)
    angles = (torch.rand(500, 3, generator=g, dtype=D) * 2 - 1) * limits
    m = euler_to_matrix(angles, order)
    torch.testing.assert_close(matrix_to_euler(m, order), angles, rtol=0, atol=1e-10)
    near = angles.clone()
    from_lock = torch.tensor([0.0, 1e-7, 1e-4], dtype=D)[torch.arange(500) % 3]
    near[:, 1] = torch.where(near[:, 1] >= 0, 1.0, -1.0) * (math.pi / 2 - from_lock)
    m = euler_to_matrix(near, order)                                  # at and next to the lock
    torch.testing.assert_close(euler_to_matrix(matrix_to_euler(m, order), order), m, rtol=0, atol=1e-8)


def test_euler_order_means_first_axis_outermost() -> None:
    """"ZXY" is R = Rz(a) Rx(b) Ry(c), BVH's reading of CHANNELS Zrotation Xrotation Yrotation."""
    from flowmimic.body.rotation import euler_to_matrix, matrix_to_euler

    a, b, c = 0.3, -0.7, 1.1
    rz = axis_angle_to_matrix(torch.tensor([0, 0, a], dtype=D))
    rx = axis_angle_to_matrix(torch.tensor([b, 0, 0], dtype=D))
    ry = axis_angle_to_matrix(torch.tensor([0, c, 0], dtype=D))
    torch.testing.assert_close(euler_to_matrix(torch.tensor([a, b, c], dtype=D), "ZXY"), rz @ rx @ ry)
    # Rotation about x by 90 deg takes +y to +z.
    torch.testing.assert_close(euler_to_matrix(torch.tensor([math.pi / 2, 0, 0], dtype=D), "XYZ")
                               @ torch.tensor([0, 1.0, 0], dtype=D), torch.tensor([0, 0, 1.0], dtype=D))
    # Exactly at gimbal lock (zeros, not rounding noise): Rz(30 deg) Rx(90 deg) written out.
    ca, sa = math.cos(math.pi / 6), math.sin(math.pi / 6)
    locked = torch.tensor([[ca, 0.0, sa], [sa, 0.0, -ca], [0.0, 1.0, 0.0]], dtype=D)
    torch.testing.assert_close(euler_to_matrix(matrix_to_euler(locked, "ZXY"), "ZXY"), locked)
    with pytest.raises(ValueError, match="permutation"):
        matrix_to_euler(torch.eye(3, dtype=D), "XXY")
