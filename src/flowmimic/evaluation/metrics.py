"""Joint-space reconstruction errors per frame, defined as the motion-generation field reports them.

Features (denormalised, (B, T, 263)) of the ground truth and the reconstruction are turned into
joints (B, T, 22, 3) with HumanML3D's recover-from-RIC (`features_to_joints`); the root trajectory
is integrated from each window's first frame, as the features define it. Per frame, averaged over
the 22 joints (metres; the evaluate stage reports mm):

    mpjpe        raw MPJPE: joint position error with the integrated root (drift included);
    mpjpe_root   MPJPE after subtracting each frame's root joint from both skeletons: the pose error
                 alone. This is what MLD reports as "MPJPE" (root-aligned per frame, `align_inds=[0]`
                 in MLD's `calc_mpjpe`, mld/models/metrics/utils.py; Chen et al., CVPR 2023);
    pa_mpjpe     PA-MPJPE: error after the similarity transform (rotation, uniform scale,
                 translation) that best maps each reconstructed frame onto the ground-truth frame
                 (Procrustes / Umeyama 1991, as MLD's `calc_pampjpe`: per frame, all joints);
    accl         ACCL: |a_pred - a_gt| of the second differences a_t = x_{t-1} - 2 x_t + x_{t+1} of
                 the joints with the integrated root (mm/frame^2 at data.fps), as MLD's `calc_accel`
                 ("ACCEL"); defined on a window's interior frames only (T - 2 per window, MLD's
                 `count - 2 * count_seq`), 0 on the first and last frame.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowmimic.features.humanml3d import features_to_joints

ERRORS: tuple[str, ...] = ("mpjpe", "mpjpe_root", "pa_mpjpe", "accl")


def procrustes_align(source: Tensor, target: Tensor) -> Tensor:
    """`source` (..., J, 3) mapped by the similarity transform s R x + t closest to `target` (least squares).

    Umeyama (1991), "Least-squares estimation of transformation parameters between two point
    patterns": with centred point sets X (source) and Y (target), the SVD U S V^T of the 3x3
    cross-covariance Y^T X gives R = U D V^T, D = diag(1, 1, det(U V^T)) (a proper rotation, never a
    reflection), scale s = tr(S D) / |X|^2 and t = mean(Y) - s R mean(X). Batched over the leading dims.
    """
    mu_x, mu_y = source.mean(-2, keepdim=True), target.mean(-2, keepdim=True)
    x, y = source - mu_x, target - mu_y
    u, sv, vh = torch.linalg.svd(y.transpose(-1, -2) @ x)                          # (..., 3, 3)
    d = torch.ones_like(sv)
    d[..., -1] = torch.sign(torch.linalg.det(u @ vh))
    rot = u @ (d[..., :, None] * vh)                                                # U D V^T
    var_x = x.square().sum((-1, -2))
    scale = (sv * d).sum(-1) / var_x.clamp(min=torch.finfo(var_x.dtype).tiny)      # (...,)
    return scale[..., None, None] * x @ rot.transpose(-1, -2) + mu_y


def joint_errors_from_joints(jp: Tensor, jt: Tensor) -> dict[str, Tensor]:
    """Per-frame errors (B, T) in metres of predicted / target joints (B, T, J, 3); see `ERRORS`."""
    mpjpe = (jp - jt).norm(dim=-1).mean(-1)
    rel = (jp - jp[..., :1, :]) - (jt - jt[..., :1, :])
    pa = (procrustes_align(jp, jt) - jt).norm(dim=-1).mean(-1)
    accl = torch.zeros_like(mpjpe)
    if jp.shape[1] >= 3:
        ap = jp[:, 2:] - 2 * jp[:, 1:-1] + jp[:, :-2]
        at = jt[:, 2:] - 2 * jt[:, 1:-1] + jt[:, :-2]
        accl[:, 1:-1] = (ap - at).norm(dim=-1).mean(-1)
    return {"mpjpe": mpjpe, "mpjpe_root": rel.norm(dim=-1).mean(-1), "pa_mpjpe": pa, "accl": accl}


def joint_errors(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Per-frame errors (B, T) in metres of denormalised feature windows (B, T, 263), in float64."""
    return joint_errors_from_joints(features_to_joints(pred.double()), features_to_joints(target.double()))
