"""What a training worker holds in memory: its resident-set peak and its live tensors.

The resident set is what the operating system charges the process (Python, torch, Ray,
DeepSpeed, allocator caches, activations); the live tensors are what the model states take:
parameters, gradients and optimizer moments, each storage counted once however many views
share it. ZeRO's savings show in the second; they drown in the first at small sizes.
"""

from __future__ import annotations

import gc

import torch


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def live_tensor_mib() -> float:
    """MiB of tensor storage reachable from this process's Python objects, each storage once."""
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
    return sum(sizes.values()) / 2**20
