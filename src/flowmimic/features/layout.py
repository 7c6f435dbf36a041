"""The 263-D HumanML3D feature layout: the one place for its dims, slices and groups.

Per frame t (features have T-1 frames for T joint frames), 0-based, end-exclusive:

    root_yaw_vel  [0:1]      arcsin of the yaw-velocity quaternion's y (a half-angle)
    root_xz_vel   [1:3]      root velocity in the root's heading frame (x, z)
    root_y        [3:4]      root height
    ric           [4:67]     joints 1..21 relative to the root, heading-aligned (21 x 3)
    rot_6d        [67:193]   local joint rotations of joints 1..21 as 6-D (21 x 6)
    local_vel     [193:259]  joint velocities in the heading frame (22 x 3)
    feet_contact  [259:263]  left ankle, left toe, right ankle, right toe (0/1)
"""

from __future__ import annotations

from flowmimic.body.skeleton import N_JOINTS

DIM = 263
ROOT_YAW_VEL = slice(0, 1)
ROOT_XZ_VEL = slice(1, 3)
ROOT_Y = slice(3, 4)
ROOT = slice(0, 4)
RIC = slice(4, 4 + (N_JOINTS - 1) * 3)                        # 4:67
ROT_6D = slice(RIC.stop, RIC.stop + (N_JOINTS - 1) * 6)       # 67:193
LOCAL_VEL = slice(ROT_6D.stop, ROT_6D.stop + N_JOINTS * 3)    # 193:259
CONTACTS = slice(LOCAL_VEL.stop, LOCAL_VEL.stop + 4)          # 259:263
assert CONTACTS.stop == DIM

# The channels that make the motion: root and root-relative joint positions, all that
# `features_to_joints` reads (ROT_6D and LOCAL_VEL re-encode the same motion redundantly).
MOTION = slice(ROOT.start, RIC.stop)                            # 0:67
# Continuous dims: normalised with the training mean/std, reconstructed with SmoothL1.
CONTINUOUS = slice(0, CONTACTS.start)                          # 0:259
# CONTACTS are binary: left as 0/1 (mean 0, std 1 in the stats file), reconstructed as logits.
# Dims whose frame-to-frame change the smoothness loss constrains (the seed's choice: root,
# rotations, velocities; ric positions are left to the reconstruction term).
SMOOTHED: tuple[slice, ...] = (ROOT, ROT_6D, LOCAL_VEL)

# HumanML3D's groups for the per-group std average (`stats.group_std`).
STD_GROUPS: tuple[tuple[str, slice], ...] = (
    ("root_yaw_vel", ROOT_YAW_VEL), ("root_xz_vel", ROOT_XZ_VEL), ("root_y", ROOT_Y),
    ("ric", RIC), ("rot_6d", ROT_6D), ("local_vel", LOCAL_VEL),
)
