"""Process-wide memory setting for fast training on CPU.

Each training step allocates and frees the same large buffers (activations, weight gradients,
bfloat16 copies of the weights). glibc's malloc hands blocks above its mmap threshold back to
the operating system when they are freed, so the next step takes fresh pages from the kernel
again: tens of thousands of page faults per MNIST step. `reuse_freed_memory` raises the
thresholds so that freed blocks stay in the process and are reused.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit systems
_TRIM_THRESHOLD = 2**30  # free memory above this at the top of the heap still goes back


def reuse_freed_memory() -> bool:
    """Keep freed blocks of up to 32 MiB in the process for reuse (glibc only).

    Affects the whole process from this call on; memory already returned is not touched.
    Returns False, doing nothing, where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
