"""The 263-D HumanML3D motion representation: its layout, the conversions, normalisation."""
