"""Motion out of FlowMimic: BVH files (`bvh`) and SMPL poses in AIST++'s format (`smpl`), both posed by
one inverse kinematics (`ik`); `command` backs `flowmimic export IN OUT`; `roundtrip` measures how
faithfully an export reads back (tests and `benchmarks/bench_export.py`)."""
