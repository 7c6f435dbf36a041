"""Batched rotation conversions in torch: axis-angle, quaternion (w, x, y, z), matrix, 6-D.

The project's only rotation module. Every function takes tensors with any leading dimensions
and broadcasts where it makes sense. Conversions stay finite (and differentiable) at zero angle
by using `torch.sinc`, and are exact at 180 degrees (quaternion from matrix picks the best
conditioned of four formulas). The 6-D representation is HumanML3D's: the first two COLUMNS of
the rotation matrix, column 0 then column 1 (Zhou et al. 2019 use the same idea).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _cross(a: Tensor, b: Tensor) -> Tensor:
    return torch.linalg.cross(*torch.broadcast_tensors(a, b), dim=-1)


# ----------------------------------------------------------------------------- quaternions


def quat_normalize(q: Tensor, eps: float = 1e-12) -> Tensor:
    return q / q.norm(dim=-1, keepdim=True).clamp_min(eps)


def quat_identity(shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> Tensor:
    q = torch.zeros(*shape, 4, dtype=dtype, device=device)
    q[..., 0] = 1.0
    return q


def quat_mul(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a * b (apply b, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack((
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ), dim=-1)


def quat_inv(q: Tensor) -> Tensor:
    """Inverse of a unit quaternion (its conjugate)."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def quat_rotate(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    qv = q[..., 1:]
    t = 2.0 * _cross(qv, v)
    return v + q[..., :1] * t + _cross(qv, t)


def quat_between(u: Tensor, v: Tensor) -> Tensor:
    """The quaternion rotating direction u onto v: (|u||v| + u.v, u x v), normalised."""
    u, v = torch.broadcast_tensors(u, v)
    w = u.norm(dim=-1, keepdim=True) * v.norm(dim=-1, keepdim=True) + (u * v).sum(-1, keepdim=True)
    return quat_normalize(torch.cat((w, torch.linalg.cross(u, v, dim=-1)), dim=-1))


def quat_about_y(angle: Tensor) -> Tensor:
    """Quaternion (cos a, 0, sin a, 0) for half-angles a (a rotation by 2a about +y)."""
    z = torch.zeros_like(angle)
    return torch.stack((torch.cos(angle), z, torch.sin(angle), z), dim=-1)


def quat_to_matrix(q: Tensor) -> Tensor:
    """(..., 4) unit quaternions -> (..., 3, 3) rotation matrices."""
    w, x, y, z = quat_normalize(q).unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz, wx, wy, wz = x * y, x * z, y * z, w * x, w * y, w * z
    m = torch.stack((
        1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
        2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
        2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
    ), dim=-1)
    return m.reshape(*q.shape[:-1], 3, 3)


def matrix_to_quat(m: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions with w >= 0.

    Four algebraically equal formulas, each dividing by a different component; the one whose
    component is largest is used, so the result is accurate at every angle including 180 degrees.
    """
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    four_sq = torch.stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                           1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1)
    # 2|w|, 2|x|, 2|y|, 2|z|. The floor only touches candidates near 0, which are never picked
    # (the largest is >= 1); it keeps sqrt's gradient finite there (else 0 * inf = NaN at identity).
    mag = torch.sqrt(four_sq.clamp_min(1e-20))
    cands = torch.stack((
        torch.stack((four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01), dim=-1),
        torch.stack((m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20), dim=-1),
        torch.stack((m02 - m20, m10 + m01, four_sq[..., 2], m12 + m21), dim=-1),
        torch.stack((m10 - m01, m20 + m02, m21 + m12, four_sq[..., 3]), dim=-1),
    ), dim=-2) / (2.0 * mag.clamp_min(1e-8))[..., None]             # (..., 4 candidates, 4)
    best = mag.argmax(dim=-1)
    q = torch.take_along_dim(cands, best[..., None, None].expand(*best.shape, 1, 4), dim=-2)[..., 0, :]
    q = quat_normalize(q)
    return torch.where(q[..., :1] < 0, -q, q)


# ----------------------------------------------------------------------------- axis-angle


def axis_angle_to_quat(aa: Tensor) -> Tensor:
    """(..., 3) axis * angle (radians) -> (..., 4) unit quaternions."""
    half = aa.norm(dim=-1, keepdim=True) / 2
    # sin(half) / |aa| = 0.5 * sin(half) / half, written with sinc so that zero angle is exact.
    return torch.cat((torch.cos(half), aa * 0.5 * torch.sinc(half / math.pi)), dim=-1)


def quat_to_axis_angle(q: Tensor) -> Tensor:
    """(..., 4) unit quaternions -> (..., 3) axis * angle with angle in [0, pi]."""
    q = torch.where(q[..., :1] < 0, -q, q)
    xyz = q[..., 1:]
    half = torch.atan2(xyz.norm(dim=-1, keepdim=True), q[..., :1])
    return xyz * (2.0 / torch.sinc(half / math.pi))


def _skew(v: Tensor) -> Tensor:
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack((o, -z, y, z, o, -x, -y, x, o), dim=-1).reshape(*v.shape[:-1], 3, 3)


def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """Rodrigues: R = I + sin(t)/t K + (1 - cos t)/t^2 K^2 with K = skew(aa), via sinc."""
    theta = aa.norm(dim=-1)[..., None, None]
    k = _skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand(k.shape)
    return eye + torch.sinc(theta / math.pi) * k + 0.5 * torch.sinc(theta / (2 * math.pi)) ** 2 * (k @ k)


def matrix_to_axis_angle(m: Tensor) -> Tensor:
    return quat_to_axis_angle(matrix_to_quat(m))


# ----------------------------------------------------------------------------- 6-D


def matrix_to_6d(m: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 6): column 0 then column 1."""
    return torch.cat((m[..., :, 0], m[..., :, 1]), dim=-1)


def sixd_to_matrix(d6: Tensor) -> Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two columns; the third is their cross product."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.stack((b1, b2, _cross(b1, b2)), dim=-1)


def quat_to_6d(q: Tensor) -> Tensor:
    return matrix_to_6d(quat_to_matrix(q))


def sixd_to_quat(d6: Tensor) -> Tensor:
    return matrix_to_quat(sixd_to_matrix(d6))


# ----------------------------------------------------------------------------- Euler angles
# Tait-Bryan angles in BVH's sense: order "ZXY" means R = Rz(a0) @ Rx(a1) @ Ry(a2) (intrinsic: rotate
# about z, then about the new x, then the new y), angles listed in that order, radians.

_AXES = {"X": 0, "Y": 1, "Z": 2}


def _euler_axes(order: str) -> tuple[int, int, int]:
    axes = tuple(_AXES.get(c, -1) for c in order.upper())
    if len(axes) != 3 or sorted(axes) != [0, 1, 2]:
        raise ValueError(f"Euler order must be a permutation of 'XYZ' (e.g. 'ZXY'), got {order!r}")
    return axes  # type: ignore[return-value]


def euler_to_matrix(angles: Tensor, order: str) -> Tensor:
    """(..., 3) angles (radians, in `order`) -> (..., 3, 3): R = R_order[0] @ R_order[1] @ R_order[2]."""
    axes = _euler_axes(order)
    eye = torch.eye(3, dtype=angles.dtype, device=angles.device)
    mats = [axis_angle_to_matrix(angles[..., n, None] * eye[axis]) for n, axis in enumerate(axes)]
    return mats[0] @ mats[1] @ mats[2]


def matrix_to_euler(m: Tensor, order: str, lock_eps: float = 1e-9) -> Tensor:
    """(..., 3, 3) rotations -> (..., 3) angles (radians, in `order`), the inverse of `euler_to_matrix`.

    For R = R_i(a) R_j(b) R_k(c) with parity s (+1 when i, j, k is cyclic): sin b = s R[i, k],
    tan a = -s R[j, k] / R[k, k], tan c = -s R[i, j] / R[i, i] (Shoemake, Graphics Gems IV, 1994).
    At gimbal lock (cos b < lock_eps) only a +- c is defined: c = 0 and a = atan2(s R[k, j], R[j, j]).
    The middle angle is in [-pi/2, pi/2], the others in (-pi, pi].
    """
    i, j, k = _euler_axes(order)
    s = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    sin_b = (s * m[..., i, k]).clamp(-1.0, 1.0)
    b = torch.asin(sin_b)
    a = torch.atan2(-s * m[..., j, k], m[..., k, k])
    c = torch.atan2(-s * m[..., i, j], m[..., i, i])
    locked = torch.sqrt((1.0 - sin_b * sin_b).clamp_min(0.0)) < lock_eps
    a = torch.where(locked, torch.atan2(s * m[..., k, j], m[..., j, j]), a)
    c = torch.where(locked, torch.zeros_like(c), c)
    return torch.stack((a, b, c), dim=-1)
