"""The allocator's behaviour, pinned for every measuring process.

glibc's malloc raises its mmap threshold dynamically whenever a mid-sized mmapped block is freed, so
where a case's tensors live (fresh mmapped pages or recycled heap) depends on what the process did
before: the same case measured fast or slow depending on case order, `-k` selection or sharding.
Setting the two thresholds explicitly (what MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ do
before start-up) switches that adjustment off; mallopt() does it from inside the running process,
so no re-exec or LD_PRELOAD is needed. DataLoader workers are forked and inherit it. Measured
effect: docs/performance.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

MMAP_THRESHOLD = 32 * 2**20  # blocks above this are mmapped; below it they come from the heap
TRIM_THRESHOLD = 64 * 2**20  # free heap kept before returning it to the system
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers


@functools.lru_cache(maxsize=1)
def pin() -> str:
    """Pin the thresholds once per process; returns the setting in words, for the environment record."""
    if os.environ.get("LD_PRELOAD", "").strip():
        return f"preloaded: {os.environ['LD_PRELOAD'].strip()} (not pinned by dnnbench)"
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return "system allocator (not glibc: thresholds not pinned)"
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not ok:
        return "glibc malloc (mallopt refused: thresholds not pinned)"
    return f"glibc malloc, mmap_threshold {MMAP_THRESHOLD // 2**20} MiB, trim_threshold {TRIM_THRESHOLD // 2**20} MiB"


def state() -> str:
    """The allocator setting of this process, without changing it."""
    if pin.cache_info().currsize:
        return pin()
    return "default (not pinned: glibc's dynamic mmap threshold)"
