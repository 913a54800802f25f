"""Activation checkpointing: trade recomputation in backward for activation memory.

A wrapped call keeps only its inputs during forward and re-runs itself during backward to
rebuild the activations the gradient needs. ``use_reentrant=False`` is PyTorch's
recommended implementation: it accepts non-tensor arguments (a ``None`` mask) and inputs
that do not require grad, and it replays the RNG state, so the dropout masks of the
recomputation equal those of the original forward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch.utils.checkpoint import checkpoint

T = TypeVar("T")


def maybe_checkpoint(fn: Callable[..., T], *args: Any, enabled: bool) -> T:
    """``fn(*args)``, checkpointed when ``enabled`` and autograd is recording.

    Under ``torch.no_grad()`` (evaluation) there is nothing to save, so ``fn`` runs plainly.
    """
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)
