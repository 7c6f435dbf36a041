"""The multi-domain conditional motion VAE and its losses."""
