"""`flowmimic.cache.heap`: with its malloc thresholds, memory freed and allocated again faults no pages."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from raw_fixtures import REPO

# Rounds of: four 2 MB arrays alive together, filled, then freed (a sequence's temporaries, in small).
# glibc's defaults map each round's blocks afresh or trim them from the heap's top: a fault per page.
_PROBE = """
import resource, sys
import numpy as np
from flowmimic.cache.heap import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
def rounds(n):
    for _ in range(n):
        blocks = [np.ones(2**18) for _ in range(4)]
        del blocks
rounds(2)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(50)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": ""}).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's")
def test_kept_memory_is_reused_without_page_faults():
    default_applied, default = _faults("default")
    applied, kept = _faults("keep")
    pages = 50 * 4 * 2**21 // 4096                                # every page of every round
    assert default_applied == "None" and applied == "True"
    assert default > pages // 2 and kept < pages // 50, (default, kept)
