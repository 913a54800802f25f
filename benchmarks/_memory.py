"""Peak resident-set growth of one step, shared by the benchmark scripts' memory modes."""

from __future__ import annotations

import gc
import os
import resource
import threading
import time
from collections.abc import Callable


def rss() -> int:
    """This process's resident set size, bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_growth(step: Callable[[], None]) -> tuple[int, int, float]:
    """Run ``step`` once: (RSS before it, bytes; peak RSS minus that, bytes; its wall time, s).

    A thread samples the RSS every millisecond; if the step also raised the process's
    ``ru_maxrss`` (its all-time peak), that exact figure is used. Run it in a fresh process
    with ``MALLOC_MMAP_THRESHOLD_=65536`` so freed tensors go back to the OS.
    """
    gc.collect()
    base = rss()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    step()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if after > before:  # this step set the process maximum: the exact peak
        peak = max(peak, after)
    return base, peak - base, elapsed
