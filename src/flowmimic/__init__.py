"""FlowMimic: raw human-motion captures -> HumanML3D 263-D features -> a multi-domain motion VAE."""

__version__ = "0.1.0"
