"""The SMPL body: skeleton constants, rotations, forward kinematics, model files."""
