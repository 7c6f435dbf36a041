"""Keep freed memory in the process heap while the cache stage featurises (glibc only).

glibc's malloc serves blocks above its mmap threshold (128 KB, raised as big blocks are freed) with
fresh mappings, and gives the top of the heap back to the OS once more than the trim threshold of
it is free. A sequence's tensors are 0.1-5 MB and many are alive at once, so the stage kept mapping
and returning the same memory: every 4 KB page of it a page fault and a zeroed page, one per page
per sequence. On the real-format benchmark data that was ~90,000 faults per run, about 15 % of the
stage's CPU time spent in the kernel, a cost that two workers share badly (the faults zero memory
and take the address-space lock). Fixed thresholds (`mallopt(3)`: M_MMAP_THRESHOLD,
M_TRIM_THRESHOLD) keep the memory mapped: a worker's peak RSS is the same, its faults ~4x fewer.
"""

from __future__ import annotations

import ctypes
import platform
import sys

M_TRIM_THRESHOLD = -1          # mallopt parameter numbers, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20    # glibc's largest allowed value (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 64 * 2**20    # free memory the heap may keep at its top


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Set this process's malloc thresholds (forked children inherit them); False where the C
    library is not glibc, which leaves its allocator as it is."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 and mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
