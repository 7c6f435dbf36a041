"""The procedural demo dataset: AIST++-style dances in ten genres and MVHumanNet-style studio motion,
written in both datasets' native layouts (`write_demo`). Not a dependency of the cache or the model."""
