"""Keep freed memory in the process between training batches (glibc's allocator).

A training step allocates a few arrays of megabytes (membranes, spikes, surrogate
derivatives over all T) and frees them at its end. glibc serves every block above its
mmap threshold (128 KiB at first, adapting up to a few MiB) with a fresh ``mmap`` and
gives it back to the system on ``free``, and trims the top of the heap likewise, so the
next batch touches brand-new pages: one page fault per 4 KiB. On the project's virtual
machines a fault costs ~4 us, and faults were 13 of the 19 ms of a 784-256-10 batch
(docs/training.md, "Speed"). With the thresholds raised, freed blocks stay in the heap
and the next batch reuses them: no faults after the first batch, same results.

The setting is process-wide (it applies to everything the process allocates, torch
included) and only raises how much freed memory the process keeps, never what it uses at
its peak. Other C libraries (musl, macOS) keep their own policy: then this does nothing.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc's largest mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX): blocks
# above it (arrays over 32 MiB) are still mapped and unmapped each time
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 512 << 20


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (:data:`MMAP_THRESHOLD`,
    :data:`TRIM_THRESHOLD`) so that freed arrays are reused instead of returned to the
    system. Returns whether the C library took the setting (False off glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


__all__ = ["keep_freed_memory"]
