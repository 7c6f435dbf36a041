"""The feature cache: what it holds and which sequences each split uses (`catalog`), and how one
raw sequence becomes a cached 263-D feature file (`jobs`)."""
