"""Training: windows and the domain-balanced sampler (`windows`), the loop (`loop`), checkpoints
(`checkpoint`) and the rank-0 rule under DDP (`distributed`)."""
