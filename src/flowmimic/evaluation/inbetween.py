"""Judging in-betweening: the generate stage's `inbetween` figures against the issue's bounds.

Every full window of `2 context_frames + inbetween_frames` frames of the AIST++ test sequences is cut
into A (everything before the gap), the gap and B (everything after it); A and B are encoded on
their own, the gap is filled by the flow prior exactly as `flowmimic inbetween` does (seam pass,
placement, foot lock), and the result is judged against the real gap and a linear joint
interpolation of it: the given frames against the VAE's own reconstruction of them (root-aligned),
where the gap ends against B, acceleration at the four join frames, and the gaps' FID_k and foot
skating (also without the foot lock).
"""

from __future__ import annotations

import numpy as np
import torch

from flowmimic.body.skeleton import PELVIS
from flowmimic.cache.catalog import CachedSequence
from flowmimic.evaluation.generated import mean_with_interval
from flowmimic.evaluation.motion_metrics import fid, foot_skating_counts, kinetic_features
from flowmimic.features.humanml3d import features_to_joints
from flowmimic.features.layout import CONTACTS
from flowmimic.generation.core import decode_latents, encode_features
from flowmimic.generation.footlock import lock_feet
from flowmimic.generation.inbetween import Seam, context_frames, heading, inbetween_latents, place_between, wrap
from flowmimic.params import Params
from flowmimic.taxonomy import DOMAINS


def skating_rate(joints: torch.Tensor, fps: float) -> float | None:
    """Pooled foot skating of (N, F, 22, 3) joints (`foot_skating_counts`); None without contact steps."""
    counts = np.array([foot_skating_counts(j, fps) for j in joints], dtype=np.float64).sum(0)
    return round(float(counts[0] / counts[1]), 4) if counts[1] else None


def root_aligned_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, F, 22, 3) x 2 -> (N,) mean joint distance in mm after subtracting each frame's pelvis."""
    ra, rb = a - a[..., PELVIS:PELVIS + 1, :], b - b[..., PELVIS:PELVIS + 1, :]
    return 1000.0 * (ra - rb).norm(dim=-1).mean((-1, -2))


def joint_accel(j: torch.Tensor, frames: list[int], fps: float) -> torch.Tensor:
    """(N, F, 22, 3) -> (N,) mean acceleration magnitude (m/s^2) at the given centre frames."""
    f = torch.tensor(frames)
    a = (j[:, f + 1] - 2 * j[:, f] + j[:, f - 1]) * fps * fps
    return a.norm(dim=-1).mean((-1, -2))


def inbetween_check(gm, prior, seqs: list[CachedSequence], params: Params, boot: int, seed: int) -> dict:
    """In-betweening on the AIST++ test sequences (the module docstring); the issue's bounds in `targets`."""
    p, fps = params.generate, float(params.data.fps)
    gap = p.inbetween_frames
    c = context_frames(prior.window, gap, (p.context_frames, p.context_frames))
    span = 2 * c + gap
    z_a, z_b, real_w, genres = [], [], [], []
    for seq in seqs:
        feats = torch.from_numpy(np.asarray(seq.load(), dtype=np.float32))
        for st in range(0, seq.frames - span + 1, span):
            z_a.append(encode_features(gm, feats[None, :st + c], "aist").cpu()[:, -c:])
            z_b.append(encode_features(gm, feats[None, st + c + gap:], "aist").cpu()[:, :c])
            real_w.append(feats[st:st + span])
            genres.append(seq.genre_id)
    if len(real_w) < 2:
        return {"windows": len(real_w), "note": f"fewer than 2 test windows of {span} frames"}
    real_f = torch.stack(real_w)
    z = inbetween_latents(prior, torch.cat(z_a), torch.cat(z_b), gap, DOMAINS.index("aist"), genres, steps=p.steps,
                          solver=p.solver, guidance=p.guidance, generator=torch.Generator().manual_seed(seed),
                          seam=Seam(p.seam_strength, p.seam_frames))
    out_f = decode_latents(gm, z, "aist", genres, p.decoder_guidance)
    recon_f = decode_latents(gm, encode_features(gm, real_f, "aist"), "aist", genres, p.decoder_guidance)
    real_j, recon_j = features_to_joints(real_f), features_to_joints(recon_f)
    placed = [place_between(j, r[:c], r[c + gap:], c, gap) for j, r in zip(features_to_joints(out_f), real_j)]
    unlocked = torch.stack([q.joints for q in placed])
    out_j = (torch.stack([lock_feet(j, f[:, CONTACTS]) for j, f in zip(unlocked, out_f)]) if p.foot_lock
             else unlocked)
    known = list(range(c)) + list(range(c + gap, span))
    given = root_aligned_mm(out_j[:, known], real_j[:, known])
    own = root_aligned_mm(recon_j[:, known], real_j[:, known])
    b0 = c + gap
    end_m = (out_j[:, b0, PELVIS, [0, 2]] - real_j[:, b0, PELVIS, [0, 2]]).norm(dim=-1)
    end_deg = torch.rad2deg(wrap(heading(out_j[:, b0]) - heading(real_j[:, b0])).abs())
    joins = [c - 1, c, b0 - 1, b0]
    acc_gen, acc_real = joint_accel(out_j, joins, fps), joint_accel(real_j, joins, fps)
    clip = slice(c - 1, b0 + 1)                                              # the gap with its two neighbours
    w = torch.linspace(0, 1, gap + 2)[None, :, None, None]
    linear = real_j[:, c - 1:c][:, [0] * (gap + 2)] * (1 - w) + real_j[:, b0:b0 + 1][:, [0] * (gap + 2)] * w
    gaps = {"real": real_j[:, clip], "flow": out_j[:, clip], "linear": linear, "unlocked": unlocked[:, clip]}
    kin = {k: kinetic_features(v, fps) for k, v in gaps.items()}
    skate = {k: skating_rate(v, fps) for k, v in gaps.items()}
    fid_flow, fid_lin = fid(kin["real"], kin["flow"]), fid(kin["real"], kin["linear"])
    mean = lambda v: round(float(v.mean()), 4)   # noqa: E731
    res = {
        "windows": len(real_w), "gap_frames": gap, "context_frames": c,
        "given_frames_root_aligned_mm": mean(given), "vae_reconstruction_root_aligned_mm": mean(own),
        "root_end_error_m": mean(end_m), "heading_end_error_deg": mean(end_deg),
        "root_end_error_before_correction_m": mean(torch.tensor([q.end_error_before_m for q in placed])),
        "heading_end_error_before_correction_deg": mean(torch.tensor([q.heading_error_before_deg for q in placed])),
        "join_acceleration_mps2": mean(acc_gen), "real_join_acceleration_mps2": mean(acc_real),
        "gap_fid_k": round(fid_flow, 4), "linear_gap_fid_k": round(fid_lin, 4),
        "foot_lock": p.foot_lock, "gap_foot_skating": skate["flow"], "gap_foot_skating_without_foot_lock": skate["unlocked"],
        "linear_gap_foot_skating": skate["linear"], "real_gap_foot_skating": skate["real"],
        "given_frames_ci95": mean_with_interval(given.double().numpy(), boot, seed).get("ci95"),
    }
    res["targets"] = {
        "given_within_recon_plus_5mm": bool(res["given_frames_root_aligned_mm"] <= res["vae_reconstruction_root_aligned_mm"] + 5),
        "root_end_within_5cm": bool(float(end_m.max()) <= 0.05),
        "heading_end_within_10deg": bool(float(end_deg.max()) <= 10.0),
        "join_acceleration_within_1.5x_real": bool(res["join_acceleration_mps2"] <= 1.5 * res["real_join_acceleration_mps2"]),
        "gap_fid_k_below_linear": bool(fid_flow < fid_lin),
        "gap_foot_skating_below_linear": bool(skate["flow"] is not None and skate["linear"] is not None
                                              and skate["flow"] < skate["linear"]),
    }
    return res
