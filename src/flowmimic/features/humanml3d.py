"""HumanML3D's 263-D motion features: joints -> features and features -> joints, batched in torch.

Implements the definition in `features_spec.md` (HumanML3D, Guo et al. CVPR 2022, its
`motion_representation` processing and `recover_from_ric`) step by step, including the steps
that look odd (they are marked "oddity" below); compatibility with HumanML3D's statistics,
evaluators and visualisers is the point. Everything is batched over leading dimensions:
`joints_to_features` takes `(..., T, 22, 3)` sequences of equal length and never loops over
frames, sequences or even joints (HumanML3D's per-chain IK is computed for all joints at once;
see `_ik`).

`joints_to_features` computes in float64 when float64 output is asked for and in float32
otherwise. HumanML3D's own code computes its quaternion steps in float32, so float32 agrees with
it as well as float64 does (to ~4e-5 on real samples, within its own float32 noise) and is
about 1.5x faster.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from flowmimic.body.rotation import (
    quat_about_y, quat_between, quat_identity, quat_inv, quat_mul, quat_rotate, quat_to_6d,
    quat_to_matrix,
)
from flowmimic.body.skeleton import (
    FACE_JOINTS, KINEMATIC_CHAINS, LEFT_FOOT, LOWER_LEGS, N_JOINTS, RIGHT_FOOT, raw_offsets,
    target_offsets,
)
from flowmimic.features.layout import (
    CONTACTS, DIM, LOCAL_VEL, RIC, ROOT_XZ_VEL, ROOT_Y, ROOT_YAW_VEL, ROT_6D,
)

# HumanML3D's foot-contact threshold on the squared per-frame displacement (m^2). Stages pass
# params.features.feet_threshold; this is only the default of the library function / CLI.
FEET_THRESHOLD = 0.002
# HumanML3D smooths the IK heading with scipy.ndimage.gaussian_filter1d(sigma=20, mode='nearest')
# (scipy's default truncate=4.0). Part of the definition, not a knob.
_SMOOTH_SIGMA = 20.0
_SMOOTH_TRUNCATE = 4.0

# The parent of each joint along HumanML3D's chains (-1 for the root) and, for the IK, the joint
# whose rotation a chain's running quaternion holds before each joint: 0 (the root quaternion)
# for the first bone of every chain, the chain parent otherwise. The arm chains start at joint 9
# but their running rotation starts from the ROOT quaternion, not joint 9's (HumanML3D's FK/IK).
_CHAIN_PARENT = [-1] * N_JOINTS
_IK_PREV = [0] * N_JOINTS
for _chain in KINEMATIC_CHAINS:
    for _i in range(1, len(_chain)):
        _CHAIN_PARENT[_chain[_i]] = _chain[_i - 1]
        _IK_PREV[_chain[_i]] = 0 if _i == 1 else _chain[_i - 1]
_BONE_PARENTS = _CHAIN_PARENT[1:]                     # parents of joints 1..21
_FEET = LEFT_FOOT + RIGHT_FOOT                        # (7, 10, 8, 11): the contact dims' order
# _ANCESTORS[j, k - 1] = 1 if joint k (1..21) is j or one of j's ancestors along the chains.
_ANCESTORS = torch.zeros(N_JOINTS, N_JOINTS - 1, dtype=torch.float64)
for _j in range(1, N_JOINTS):
    _k = _j
    while _k > 0:
        _ANCESTORS[_j, _k - 1] = 1.0
        _k = _CHAIN_PARENT[_k]

_Y = (0.0, 1.0, 0.0)
_Z = (0.0, 0.0, 1.0)


# ----------------------------------------------------------------------------- input checks


def _frames_text(frames: Tensor) -> str:
    idx = frames.nonzero().flatten().tolist()
    shown = ", ".join(str(i) for i in idx[:10])
    return f"[{shown}]" if len(idx) <= 10 else f"[{shown}, ...] ({len(idx)} frames)"


def _to_tensor(x: Tensor | np.ndarray) -> Tensor:
    if isinstance(x, Tensor):
        return x
    a = np.asarray(x)
    if not a.dtype.isnative or not a.flags.writeable:   # big-endian .npy data, read-only memmaps
        a = a.astype(a.dtype.newbyteorder("="))
    return torch.from_numpy(a)


def _as_joints(joints: Tensor | np.ndarray, dtype: torch.dtype | None, what: str = "joints"
               ) -> tuple[Tensor, torch.dtype]:
    """Validate `(..., T, 22, 3)` joints; return them in the compute dtype, and the output dtype."""
    j = _to_tensor(joints)
    if j.dim() < 3 or tuple(j.shape[-2:]) != (N_JOINTS, 3):
        raise ValueError(f"{what} must have shape (..., T, {N_JOINTS}, 3), got {tuple(j.shape)}")
    if j.shape[-3] < 2:
        raise ValueError(f"{what} need at least 2 frames (features have T-1 frames), got {j.shape[-3]}")
    if j.is_complex() or j.dtype == torch.bool:
        raise ValueError(f"{what} must be real numbers, got dtype {j.dtype}")
    out_dtype = dtype if dtype is not None else (j.dtype if j.is_floating_point() else torch.float32)
    j = j.detach().to(torch.float64 if out_dtype == torch.float64 else torch.float32)
    bad = ~torch.isfinite(j).flatten(-2).all(-1)                       # (..., T)
    if bad.any():
        if bad.dim() == 1:
            raise ValueError(f"{what} contain NaN/Inf at frames {_frames_text(bad)}")
        seqs = bad.any(-1).nonzero()                                   # (n_bad, n_lead)
        first = tuple(seqs[0].tolist())
        name = str(first[0]) if len(first) == 1 else str(first)
        more = f" ({len(seqs)} sequences affected)" if len(seqs) > 1 else ""
        raise ValueError(f"{what} contain NaN/Inf in sequence {name} at frames "
                         f"{_frames_text(bad[first])}{more}")
    return j, out_dtype


# ----------------------------------------------------------------------------- helpers


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _take(x: Tensor, idx: Sequence[int]) -> Tensor:
    """x[:, :, idx] (joints on dim 2) as a concatenation of slices over runs of consecutive
    indices: several times faster on CPU than advanced indexing for these short index lists."""
    parts, start = [], 0
    for i in range(1, len(idx) + 1):
        if i == len(idx) or idx[i] != idx[i - 1] + 1:
            parts.append(x[:, :, idx[start]: idx[i - 1] + 1])
            start = i
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)


def _between(u: Tensor, v: Tensor) -> Tensor:
    """`quat_between(u, v)` for UNIT vectors, made accurate where u and v are nearly antiparallel.

    There the formula's scalar part |u||v| + u.v cancels: in float32 it is rounding noise within
    ~1e-3 rad of a half turn, and exactly antiparallel vectors give a zero quaternion (HumanML3D's
    `qbetween`: NaN). Those few entries are redone in float64, and where the vectors are
    antiparallel even there, q is the half turn about the axis perpendicular to u closest to +y
    (so a heading of exactly -Z turns about the vertical, like any other heading).
    """
    q = quat_between(u, v)
    u, v = torch.broadcast_tensors(u, v)
    near = (u * v).sum(-1) < -0.999
    if not bool(near.any()):
        return q
    un, vn = _unit(u[near].double()), _unit(v[near].double())
    axis = torch.tensor(_Y, dtype=torch.float64, device=un.device) - un[:, 1:2] * un
    alt = torch.tensor((1.0, 0.0, 0.0), dtype=torch.float64, device=un.device) - un[:, 0:1] * un
    axis = _unit(torch.where(axis.norm(dim=-1, keepdim=True) > 0.1, axis, alt))
    half_turn = torch.cat((torch.zeros_like(axis[:, :1]), axis), dim=-1)
    anti = (un * vn).sum(-1, keepdim=True) < -1.0 + 16 * torch.finfo(torch.float64).eps
    q[near] = torch.where(anti, half_turn, quat_between(un, vn)).to(q.dtype)
    return q


def _gaussian_smooth_time(x: Tensor, sigma: float = _SMOOTH_SIGMA,
                          truncate: float = _SMOOTH_TRUNCATE, block: int = 1024) -> Tensor:
    """scipy.ndimage.gaussian_filter1d(x, sigma, axis=1, mode='nearest', truncate=truncate).

    x: (B, T, C). Same kernel as scipy (radius int(truncate * sigma + 0.5), normalised weights);
    'nearest' repeats the edge frames, however short the sequence. Computed as one banded
    matrix product per block of `block` output frames (a single block for T <= block): much
    faster on CPU than conv1d, and memory stays linear in T.
    """
    b, t, c = x.shape
    radius = int(truncate * sigma + 0.5)
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    w = torch.exp(-0.5 / (sigma * sigma) * k * k)
    w = w / w.sum()
    idx = torch.arange(-radius, t + radius, device=x.device).clamp(0, t - 1)
    padded = x.transpose(0, 1)[idx].reshape(t + 2 * radius, b * c)                  # (T+2r, B*C)
    n = min(block, t)
    band = torch.zeros(n, n + 2 * radius, dtype=x.dtype, device=x.device)          # band[i, i+j] = w[j]
    rows = torch.arange(n, device=x.device)[:, None]
    band[rows, rows + torch.arange(2 * radius + 1, device=x.device)] = w
    out = torch.cat([band[: min(n, t - s), : min(n, t - s) + 2 * radius] @ padded[s: s + n + 2 * radius]
                     for s in range(0, t, n)])                                        # (T, B*C)
    return out.reshape(t, b, c).transpose(0, 1)


def _rotate_points(q: Tensor, points: Tensor) -> Tensor:
    """Rotate (..., P, 3) points by one (..., 4) quaternion each (..., = leading dims of q).

    Same result as `quat_rotate(q[..., None, :], points)`, via the rotation matrix: one batched
    matrix product instead of two cross products per point (the hot path of this module)."""
    return points @ quat_to_matrix(q).transpose(-1, -2)


def _heading_quat(across: Tensor, smooth: bool) -> Tensor:
    """(B, T, 3) across vectors -> (B, T, 4) quaternions turning the facing direction onto +Z."""
    across = _unit(across)
    forward = torch.linalg.cross(across.new_tensor(_Y).expand_as(across), across, dim=-1)
    if smooth:
        forward = _gaussian_smooth_time(forward)
    return _between(_unit(forward), forward.new_tensor(_Z))


def _ik(joints: Tensor, smooth: bool) -> tuple[Tensor, Tensor]:
    """HumanML3D's inverse kinematics (its `inverse_kinematics_np`), all frames and joints at once.

    Args:
        joints: (B, T, 22, 3).
        smooth: Gaussian-smooth the facing direction over time (sigma 20 frames).
    Returns:
        root: (B, T, 4) root (heading) quaternions; local: (B, T, 21, 4) rotations of joints
        1..21 relative to their chain's running rotation (HumanML3D's quat_params[:, 1:]).
    """
    # Oddity: the IK unpacks FACE_JOINTS (2, 1, 17, 16) as (l_hip, r_hip, r_sh, l_sh), so its
    # hip term is joint[1] - joint[2], the opposite sign of its shoulder term.
    l_hip, r_hip, sdr_r, sdr_l = FACE_JOINTS
    across = (joints[:, :, r_hip] - joints[:, :, l_hip]) + (joints[:, :, sdr_r] - joints[:, :, sdr_l])
    root = _heading_quat(across, smooth)                                             # (B, T, 4)
    # Oddity: frame 0's root rotation is the identity.
    root = torch.cat((quat_identity((root.shape[0], 1), root.dtype, root.device), root[:, 1:]), dim=1)

    bones = _unit(joints[:, :, 1:] - _take(joints, _BONE_PARENTS))                  # (B, T, 21, 3)
    rot_uv = _between(raw_offsets(joints.dtype).to(joints.device)[1:], bones)      # (B, T, 21, 4)
    # HumanML3D walks each chain with R <- R * local where local = R^-1 * between(raw, bone), so
    # R after joint c IS between(raw[c], bone[c]); the running R before joint c is therefore the
    # root quaternion (first bone of a chain) or the chain parent's between-quaternion. That
    # makes every joint independent, so all 21 are computed at once.
    prev = _take(torch.cat((root[:, :, None], rot_uv), dim=2), _IK_PREV[1:])
    return root, quat_mul(quat_inv(prev), rot_uv)


def _fk(root: Tensor, local: Tensor, offsets: Tensor, root_pos: Tensor) -> Tensor:
    """HumanML3D's chain forward kinematics (its `forward_kinematics_np`).

    root (B, T, 4), local (B, T, 21, 4) as from `_ik`, offsets (22, 3), root_pos (B, T, 3)
    -> (B, T, 22, 3) joints. Each chain starts from the root quaternion (the arm chains too).
    """
    joints: list[Tensor | None] = [None] * N_JOINTS
    joints[0] = root_pos
    for chain in KINEMATIC_CHAINS:
        rot = root
        for p, c in zip(chain[:-1], chain[1:]):
            rot = quat_mul(rot, local[:, :, c - 1])
            joints[c] = quat_rotate(rot, offsets[c]) + joints[p]
    return torch.stack(joints, dim=2)  # type: ignore[arg-type]


def _uniform_skeleton(joints: Tensor) -> Tensor:
    """Re-pose (B, T, 22, 3) joints on HumanML3D's target skeleton (its `uniform_skeleton`).

    HumanML3D computes `_fk(_ik(joints), target_offsets, root * scale)`. In that FK the running
    rotation reaching joint c is exactly between(raw[c], bone[c]) (see `_ik`), which turns the
    target offset raw[c] * length[c] into length[c] * unit(bone[c]). So the result is: scaled
    root, then every bone keeps its direction and takes its target length. That is computed here
    directly (same numbers, a fraction of the cost); tests check it against `_fk(_ik(...))`.
    """
    raw = raw_offsets(joints.dtype).to(joints.device)
    tgt = target_offsets(joints.dtype).to(joints.device)
    bones = joints[:, :, 1:] - _take(joints, _BONE_PARENTS)                         # (B, T, 21, 3)
    lengths = bones[:, 0].norm(dim=-1)                                               # (B, 21), frame 0
    src = torch.cat((torch.zeros_like(lengths[:, :1]), lengths), dim=1)[..., None] * raw  # (B, 22, 3)
    a, b = LOWER_LEGS
    scale = ((tgt[a].abs().amax() + tgt[b].abs().amax())
             / (src[:, a].abs().amax(-1) + src[:, b].abs().amax(-1)))                # (B,)
    root = joints[:, :, 0] * scale[:, None, None]                                    # (B, T, 3)
    new_bones = _unit(bones) * tgt[1:].norm(dim=-1)[:, None]                         # (B, T, 21, 3)
    # joint c = root + sum of the new bones of c and its ancestors: one product with the
    # (22, 21) ancestor-or-self matrix.
    return root[:, :, None] + torch.einsum("jk,btkd->btjd", _ANCESTORS.to(joints), new_bones)


def _first_frame_face(pos: Tensor) -> Tensor:
    """(B, T, 22, 3) re-targeted joints -> (B, 4) rotation turning frame 0's facing onto +Z (step 4)."""
    r_hip, l_hip, sdr_r, sdr_l = FACE_JOINTS
    first = pos[:, :1]
    across = (first[:, :, r_hip] - first[:, :, l_hip]) + (first[:, :, sdr_r] - first[:, :, sdr_l])
    return _heading_quat(across, smooth=False)[:, 0]


def _features(joints: Tensor, feet_threshold: float, out_dtype: torch.dtype) -> Tensor:
    """The spec's steps 1-8 on validated (B, T, 22, 3) joints -> (B, T-1, 263) in `out_dtype`."""
    xz = joints.new_tensor((1.0, 0.0, 1.0))
    pos = _uniform_skeleton(joints)                                                  # 1: (B, T, 22, 3)
    # 2. floor: subtract the lowest y; 3. origin: subtract frame 0's root x and z (one pass).
    floor = pos[..., 1].amin(dim=(1, 2))                                             # (B,)
    origin = pos[:, 0, 0]
    pos = pos - torch.stack((origin[:, 0], floor, origin[:, 2]), dim=-1)[:, None, None]
    face = _first_frame_face(pos)                                                    # 4: (B, 4)
    glob = _rotate_points(face, pos.flatten(1, 2)).view_as(pos)                     # (B, T, 22, 3)

    b, n = glob.shape[0], glob.shape[1] - 1
    out = torch.empty(b, n, DIM, dtype=out_dtype, device=joints.device)
    feet = _take(glob, _FEET)                                                        # 5: (B, T, 4, 3)
    disp2 = (feet[:, 1:] - feet[:, :-1]).square().sum(-1)                            # (B, T-1, 4)
    out[..., CONTACTS] = (disp2 < feet_threshold).to(out_dtype)

    r_rot, local = _ik(glob, smooth=True)                                            # 6
    out[..., ROT_6D] = quat_to_6d(local[:, :-1]).reshape(b, n, -1)
    root_vel = quat_rotate(r_rot[:, 1:], glob[:, 1:, 0] - glob[:, :-1, 0])         # (B, T-1, 3)
    ang_vel = quat_mul(r_rot[:, 1:], quat_inv(r_rot[:, :-1]))                        # (B, T-1, 4)
    # Oddity: [0] is the arcsin of the quaternion's y, i.e. half the yaw change per frame.
    out[..., ROOT_YAW_VEL] = torch.asin(ang_vel[..., 2:3].clamp(-1.0, 1.0))
    out[..., ROOT_XZ_VEL] = root_vel[..., 0::2]

    ric = _rotate_points(r_rot[:, :-1], glob[:, :-1] - glob[:, :-1, :1] * xz)       # 7: (B, T-1, 22, 3)
    out[..., ROOT_Y] = ric[:, :, 0, 1:2]
    out[..., RIC] = ric[:, :, 1:].reshape(b, n, -1)
    out[..., LOCAL_VEL] = _rotate_points(r_rot[:, :-1], glob[:, 1:] - glob[:, :-1]).reshape(b, n, -1)
    return out


# ----------------------------------------------------------------------------- public API


def joints_to_features(joints: Tensor | np.ndarray, feet_threshold: float = FEET_THRESHOLD,
                       dtype: torch.dtype | None = None) -> Tensor:
    """HumanML3D 263-D features of joint sequences.

    Args:
        joints: (..., T, 22, 3) joints in metres, y-up, SMPL order (torch or numpy), T >= 2.
            Leading dims are a batch of sequences of equal length.
        feet_threshold: squared per-frame displacement (m^2) below which a foot joint is in
            contact (HumanML3D: 0.002; stages pass params.features.feet_threshold).
        dtype: output dtype; default the input's float dtype (float32 for integer input).
    Returns:
        (..., T-1, 263) features on the input's device (layout in `flowmimic.features.layout`).
    Raises:
        ValueError: wrong shape, fewer than 2 frames, NaN/Inf (naming the sequence and frames).
    """
    j, out_dtype = _as_joints(joints, dtype)
    lead, t = j.shape[:-3], j.shape[-3]
    feats = _features(j.reshape(-1, t, N_JOINTS, 3), float(feet_threshold), out_dtype)
    return feats.reshape(*lead, t - 1, DIM)


def joints_to_features_list(joints: Sequence[Tensor | np.ndarray], feet_threshold: float = FEET_THRESHOLD,
                            dtype: torch.dtype | None = None) -> list[Tensor]:
    """`joints_to_features` for sequences of different lengths.

    Sequences of equal length (and device and dtype) are batched together; results come back in
    input order. Each item is (T_i, 22, 3); result i is (T_i - 1, 263) in item i's output dtype.
    """
    checked = [_as_joints(j, dtype, what=f"joints[{i}]") for i, j in enumerate(joints)]
    for i, (j, _) in enumerate(checked):
        if j.dim() != 3:
            raise ValueError(f"joints[{i}] must have shape (T, {N_JOINTS}, 3), got {tuple(j.shape)}")
    groups: dict[tuple[int, torch.device, torch.dtype], list[int]] = defaultdict(list)
    for i, (j, out_dtype) in enumerate(checked):
        groups[(j.shape[0], j.device, out_dtype)].append(i)
    out: list[Tensor | None] = [None] * len(checked)
    for idx in groups.values():
        feats = _features(torch.stack([checked[i][0] for i in idx]), float(feet_threshold),
                          checked[idx[0]][1])
        for k, i in enumerate(idx):
            out[i] = feats[k]
    return out  # type: ignore[return-value]


def canonical_heading(joints: Tensor | np.ndarray) -> Tensor:
    """The rotation `joints_to_features` applies to put a sequence in its canonical frame.

    Args:
        joints: (..., T, 22, 3) joints as given to `joints_to_features`.
    Returns:
        (..., 4) quaternion about y turning the first frame's facing direction (measured on the
        re-targeted skeleton, as the features do) onto +Z. Its inverse puts joints recovered from
        the features back in the input's orientation.
    """
    j, _ = _as_joints(joints, None)
    lead = j.shape[:-3]
    first = j.reshape(-1, *j.shape[-3:])[:, :1]                                      # (B, 1, 22, 3)
    return _first_frame_face(_uniform_skeleton(first)).reshape(*lead, 4)


def features_to_joints(features: Tensor | np.ndarray) -> Tensor:
    """Joint positions from 263-D features (HumanML3D's `recover_from_ric`).

    Args:
        features: (..., N, 263) features (torch or numpy).
    Returns:
        (..., N, 22, 3) joints, in the features' float dtype (float32 for integer input) and
        device; differentiable.
    """
    f = _to_tensor(features)
    if f.dim() < 2 or f.shape[-1] != DIM or f.shape[-2] < 1:
        raise ValueError(f"features must have shape (..., N, {DIM}) with N >= 1, got {tuple(f.shape)}")
    if not f.is_floating_point():
        f = f.to(torch.float32)
    # Yaw: a[0] = 0, a[t] = sum_{s<t} f[s, 0]; r = (cos a, 0, sin a, 0).
    yaw_vel = f[..., ROOT_YAW_VEL]                                                   # (..., N, 1)
    ang = torch.cumsum(torch.cat((torch.zeros_like(yaw_vel[..., :1, :]), yaw_vel[..., :-1, :]), -2), -2)
    r_inv = quat_inv(quat_about_y(ang[..., 0]))                                      # (..., N, 4)
    # Root: v[0] = 0, v[s] = (f[s-1, 1], 0, f[s-1, 2]), each rotated by its own frame's r^-1.
    xz = f[..., :-1, ROOT_XZ_VEL]
    v = torch.stack((xz[..., 0], torch.zeros_like(xz[..., 0]), xz[..., 1]), dim=-1)
    v = torch.cat((torch.zeros_like(f[..., :1, :3]), v), dim=-2)
    p = torch.cumsum(quat_rotate(r_inv, v), dim=-2)
    root = torch.stack((p[..., 0], f[..., ROOT_Y][..., 0], p[..., 2]), dim=-1)       # (..., N, 3)
    ric = f[..., RIC].unflatten(-1, (N_JOINTS - 1, 3))                               # (..., N, 21, 3)
    body = quat_rotate(r_inv[..., None, :], ric) + (p * p.new_tensor((1.0, 0.0, 1.0)))[..., None, :]
    return torch.cat((root[..., None, :], body), dim=-2)


# The exporters' IK (flowmimic.export.ik) turns bones with the same antiparallel-safe rule.
between_unit_vectors = _between

__all__ = ["FEET_THRESHOLD", "between_unit_vectors", "canonical_heading", "joints_to_features", "joints_to_features_list",
           "features_to_joints"]
