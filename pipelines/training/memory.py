"""What a training worker holds in memory: its resident-set peak and its live tensors.

The resident set is what the operating system charges the process (Python, torch, Ray,
DeepSpeed, allocator caches, activations). The live tensors are what the model states take:
parameters, gradients, optimizer moments and the engine's buffers, each storage counted once
however many views share it, and only the pages of it that are resident: DeepSpeed allocates
some buffers at their configured size (ZeRO-3's 5e8-element reduce bucket, 1.9 GiB in fp32)
and touches only what a model this size needs. ZeRO's savings show in this count; they drown
in the resident set at small sizes.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import sys

import torch


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _resident_bytes(pointer: int, nbytes: int) -> int:
    """How many of [pointer, pointer + nbytes) are in resident pages (Linux ``mincore``)."""
    if not sys.platform.startswith("linux") or nbytes == 0:
        return nbytes
    page = os.sysconf("SC_PAGE_SIZE")
    start = pointer - pointer % page
    length = pointer + nbytes - start
    vector = (ctypes.c_ubyte * ((length + page - 1) // page))()
    if _libc().mincore(ctypes.c_void_p(start), ctypes.c_size_t(length), vector) != 0:
        return nbytes  # not a mapping mincore can inspect: count it whole
    flags = bytes(vector)
    return min(nbytes, (len(flags) - flags.count(0)) * page)


def live_tensor_mib() -> float:
    """MiB of resident tensor storage reachable from this process's Python objects, each
    storage once."""
    sizes: dict[int, int] = {}
    for obj in gc.get_objects():
        if not isinstance(obj, torch.Tensor) or obj.is_meta:
            continue
        try:
            storage = obj.untyped_storage()
        except (RuntimeError, NotImplementedError):  # tensors without storage (e.g. sparse)
            continue
        pointer = storage.data_ptr()
        if pointer:
            sizes[pointer] = max(sizes.get(pointer, 0), storage.nbytes())
    return sum(_resident_bytes(p, n) for p, n in sizes.items()) / 2**20
